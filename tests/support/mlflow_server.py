"""A real ``mlflow server`` process on a free loopback port, with its own backend store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["MlflowServer", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """Start, stop and restart ``mlflow server`` on one port; the store survives restarts."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "mlflow-server.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> MlflowServer:
        mlflow = Path(sys.executable).with_name("mlflow")
        cmd = [
            str(mlflow), "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        with self.log.open("ab") as log:
            # its own process group: mlflow runs uvicorn as a child, and both must go on stop()
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer on {self.uri} within {timeout} s; see {self.log}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after 15 s)."""
        self._signal((signal.SIGTERM, signal.SIGKILL))

    def kill(self) -> None:
        """The server dies at once (SIGKILL to its whole process group)."""
        self._signal((signal.SIGKILL,))

    def _signal(self, signals: tuple[signal.Signals, ...]) -> None:
        if self.process is None:
            return
        group = os.getpgid(self.process.pid) if self.process.poll() is None else self.process.pid
        for sig in signals:
            wait = 15.0 if sig == signal.SIGTERM else 5.0
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                _wait_port_free(self.port, wait)
                break
            except (subprocess.TimeoutExpired, TimeoutError):
                continue
        self.process = None


def _wait_port_free(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} still answers")
