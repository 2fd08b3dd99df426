"""Container image references (`[registry/]repository[:tag][@digest]`) split into their parts, and which Seldon Core v2
component an image is.

Seldon's Helm chart (k8s/helm-charts/seldon-core-v2-setup/values.yaml) ships every component of one release with the
same tag, from repositories `seldonio/seldon-<component>` (the controller: `seldonio/seldonv2-controller`). Model
servers (`seldonio/mlserver`, `nvidia/tritonserver`) follow their own versions and are no Seldon component here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SELDON_COMPONENT_IMAGES", "ImageRef", "parse_image", "seldon_component"]

# Last path segment of the repository → component. Hodometer (usage telemetry) is left out: it is not on the path of
# a request and talks to no other component.
SELDON_COMPONENT_IMAGES: Mapping[str, str] = {
    "seldon-scheduler": "scheduler",
    "seldon-envoy": "envoy",
    "seldon-agent": "agent",
    "seldon-rclone": "rclone",
    "seldon-modelgateway": "modelgateway",
    "seldon-pipelinegateway": "pipelinegateway",
    "seldon-dataflow-engine": "dataflow-engine",
    "seldonv2-controller": "controller",
}


@dataclass(frozen=True)
class ImageRef:
    """One image reference. `tag` is None when none is written (the runtime pulls `latest`)."""

    text: str
    registry: str | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The repository's last path segment: `seldon-agent` of `docker.io/seldonio/seldon-agent:2.9.1`."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def unpinned(self) -> bool:
        """Whether the version it runs can change under it: no digest, and no tag or the tag `latest`."""
        return self.digest is None and (self.tag is None or self.tag == "latest")

    @property
    def version(self) -> str | None:
        """The tag with a leading `v` dropped (`v2.9.1` and `2.9.1` are one release); None for an unpinned image or one
        pinned only by digest (its version cannot be read)."""
        if self.unpinned or self.tag is None:
            return None
        return self.tag[1:] if self.tag[:1] in ("v", "V") and self.tag[1:2].isdigit() else self.tag


def parse_image(text: str) -> ImageRef | None:
    """Split an image reference; None for something that is no reference (empty, spaces, a trailing `:`)."""
    ref = text.strip()
    if not ref or any(c.isspace() for c in ref):
        return None
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not digest or not ref:
            return None
    registry = None
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, ref = first, rest
    tag = None
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > last_slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
        if not tag:
            return None
    if not ref or ref.endswith("/"):
        return None
    return ImageRef(text.strip(), registry, ref.lower(), tag, digest)


def seldon_component(image: ImageRef) -> str | None:
    """The Seldon component an image is (`scheduler`, `envoy`, `agent`…), or None for any other image."""
    return SELDON_COMPONENT_IMAGES.get(image.name)
