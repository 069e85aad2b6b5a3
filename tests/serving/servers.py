"""Real server processes for the end-to-end, crash and concurrency tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    db_url: str, data_dir: Path, *, worker: bool = True, lease: float = 2.0
) -> tuple[subprocess.Popen[bytes], str]:
    """``campaign-opt serve`` on 127.0.0.1 and a free port; returns the process and base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DATA_DIR": str(data_dir),
        "CAMPAIGN_OPT_LEASE_SECONDS": str(lease),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    cmd = [sys.executable, "-m", "experiments.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if not worker:
        cmd.append("--no-worker")
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}: {(data_dir / f'server-{port}.log').read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
