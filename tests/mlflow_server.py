"""An `mlflow server` on 127.0.0.1 with a SQLite backend: the tracking setup docs/cluster.md recommends for a
cluster, started and stopped by a test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(root: Path, allowed_hosts: str | None = None, workers: int = 2) -> Iterator[str]:
    """Yield the server's URI, http://127.0.0.1:PORT; its database and artifacts live under ``root``.
    ``allowed_hosts`` is passed on as --allowed-hosts, with ``{port}`` replaced by the port."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", str(root / "mlartifacts")]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts.format(port=port)]
    log = root / "server.log"
    with open(log, "w") as out:
        # its own session: stopping the server stops its workers too, and nothing else
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not answer within {START_TIMEOUT_S}s:\n"
                                       f"{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)  # its workers may linger over a graceful shutdown; the test is done with it
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
