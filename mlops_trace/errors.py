"""The one exception hierarchy of mlops-trace.

Every error the tool raises on purpose derives from `MlopsTraceError` and carries a one-line message that names the
input at fault. The CLI maps them to exit codes: all of them mean "could not run" (exit 2).

- `UsageError`: bad arguments or option combinations.
- `InputError`: an input (bundle, file, YAML or JSON) could not be read or parsed.
- `ClusterError`: a cluster or endpoint could not be reached, timed out, or refused us (RBAC).
"""

from __future__ import annotations


class MlopsTraceError(Exception):
    """Base class: a failure the user can act on, described in one line."""


class UsageError(MlopsTraceError):
    """Arguments that do not fit together or name something that does not exist."""


class InputError(MlopsTraceError):
    """An input file, directory or archive that could not be read or parsed."""


class ClusterError(MlopsTraceError):
    """A cluster or endpoint that could not be reached, timed out, or refused the request."""
