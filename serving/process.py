"""An API server process on 127.0.0.1 (the main job, the benchmarks, the tests): ``python -m serving``,
which serves as ``campaign-opt serve`` does without starting the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(data_dir: Path, db_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child process (the server, or a ``campaign-opt`` command): this one's,
    with the data folder, the database (when given) and nothing that calls out (MLflow telemetry,
    Ray usage stats)."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "RAY_USAGE_STATS_ENABLED": "0",
        **extra,
    }
    if db_url:
        env["DATABASE_URL"] = db_url
    return env


class ServerProcess:
    """Start the API server as a child process and wait until ``/healthz`` answers.

    Args:
        data_dir: ``DATA_DIR`` of the server (its log goes there too).
        db_url: ``DATABASE_URL``; ``None``: the default SQLite file under ``data_dir``.
        worker: run the live runner in the server.
        lease_seconds: how long a campaign stays with a worker that stopped answering.

    Example::

        with ServerProcess(Path("data")) as server:
            httpx.get(f"{server.url}/healthz")
    """

    def __init__(
        self, data_dir: Path, db_url: str | None = None, worker: bool = True, lease_seconds: float = 30.0
    ) -> None:
        self.data_dir, self.db_url, self.worker, self.lease = data_dir, db_url, worker, lease_seconds
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return child_env(self.data_dir, self.db_url, CAMPAIGN_OPT_LEASE_SECONDS=str(self.lease))

    def start(self, timeout: float = 90.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "serving",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if not self.worker:
            cmd.append("--no-worker")
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(cmd, env=self.env(), stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s; see {self.log}")

    def kill(self) -> None:
        """``kill -9``: no cleanup at all (crash tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
