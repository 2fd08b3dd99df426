"""A TLS front for `bundle serve` (plain HTTP), so a test can play the in-cluster API server: the Kubernetes client's
in-cluster configuration always speaks https to $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the
ServiceAccount's CA. The certificate is a throwaway self-signed one for IP 127.0.0.1, made with the openssl CLI."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def self_signed(workdir: Path) -> tuple[Path, Path]:
    cert, key = workdir / "ca.crt", workdir / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextmanager
def tls_front(backend_port: int, cert: Path, key: Path) -> Iterator[int]:
    """Listen with TLS on 127.0.0.1 (a free port, yielded) and relay each connection to 127.0.0.1:backend_port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(30)
            try:
                client = context.wrap_socket(raw, server_side=True)
                backend = socket.create_connection(("127.0.0.1", backend_port), timeout=30)
            except OSError:
                raw.close()
                continue
            threading.Thread(target=_pump, args=(client, backend), daemon=True).start()
            threading.Thread(target=_pump, args=(backend, client), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()
