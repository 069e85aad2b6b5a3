"""Server settings, read from the environment when asked (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where the server keeps its state.

    Attributes:
        database_url: SQLAlchemy URL (SQLite file by default; ``postgresql+psycopg://...`` for PostgreSQL).
        data_dir: folder for the SQLite file and report plots.
        run_worker: start the background live runner thread with the app.
        lease_seconds: how long a worker holds a campaign before another may claim it.
        poll_seconds: how long the worker sleeps when no campaign is due.
    """

    database_url: str = "sqlite:///data/campaign-opt.db"
    data_dir: Path = Path("data")
    run_worker: bool = True
    lease_seconds: float = 30.0
    poll_seconds: float = 0.2


def settings_from_env() -> Settings:
    """Settings from ``DATABASE_URL``, ``DATA_DIR`` and ``CAMPAIGN_OPT_WORKER`` (``0``: no runner)."""
    data_dir = Path(os.environ.get("DATA_DIR", "data"))
    url = os.environ.get("DATABASE_URL", f"sqlite:///{data_dir / 'campaign-opt.db'}")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return Settings(
        database_url=url,
        data_dir=data_dir,
        run_worker=os.environ.get("CAMPAIGN_OPT_WORKER", "1") != "0",
        lease_seconds=float(os.environ.get("CAMPAIGN_OPT_LEASE_SECONDS", "30")),
    )
