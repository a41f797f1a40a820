"""An `mlflow server` on 127.0.0.1 with a SQLite backend: the tracking setup docs/cluster.md recommends for a
cluster, started and stopped by a test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(server: subprocess.Popen, url: str, what: str, log: Path | None = None) -> None:
    """Return once ``url``/health answers; raise, with the tail of ``log``, if ``server`` exits or is too slow."""
    tail = (lambda: ":\n" + log.read_text()[-3000:]) if log else (lambda: "")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"{what} exited with {server.returncode}{tail()}")
        try:
            urllib.request.urlopen(url + "/health", timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {START_TIMEOUT_S}s{tail()}") from None
            time.sleep(0.5)


@contextlib.contextmanager
def mlflow_server(root: Path, allowed_hosts: str | None = None, workers: int = 2) -> Iterator[str]:
    """Yield the server's URI, http://127.0.0.1:PORT; its database and artifacts live under ``root``.
    ``allowed_hosts`` is passed on as --allowed-hosts, with ``{port}`` replaced by the port."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        MLFLOW,
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "mlartifacts"),
    ]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts.format(port=port)]
    log = root / "server.log"
    with open(log, "w") as out:
        # its own session: stopping the server stops its workers too, and nothing else
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, uri, "mlflow server", log)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)  # its workers may linger over a graceful shutdown; the test is done with it
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _drain(stream: Iterable[str]) -> None:
    for _ in stream:
        pass


@contextlib.contextmanager
def track_ui(uri: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Serve ``uri`` with `mebqat track ui` on a free port; yield its base URL and the links it printed
    (experiment name -> URL), once /health answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mebqat", "track", "ui", "--uri", uri, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        links: dict[str, str] = {}
        for line in server.stdout:  # the links, then "serving URI at BASE" before the server starts
            if line.startswith("serving "):
                break
            name, _, url = line.strip().partition(": ")
            if url:
                links[name] = url
        # keep draining: a full pipe would block the server's own logging
        threading.Thread(target=_drain, args=(server.stdout,), daemon=True).start()
        wait_until_up(server, base, "mebqat track ui")
        yield base, links
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
