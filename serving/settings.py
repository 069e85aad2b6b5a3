"""Server settings, read from the environment when asked (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SECRET_ENV_PREFIX = "CAMPAIGN_OPT_WEBHOOK_SECRET_"
"""``CAMPAIGN_OPT_WEBHOOK_SECRET_<REF>`` holds the webhook signing secret named ``REF`` in requests."""


@dataclass(frozen=True)
class Settings:
    """Where the server keeps its state, and its limits.

    Attributes:
        database_url: SQLAlchemy URL (SQLite file by default; ``postgresql+psycopg://...`` for PostgreSQL).
        data_dir: folder for the SQLite file, report plots and saved policies (``policies/NAME``).
        run_worker: start the background live runner thread with the app.
        lease_seconds: how long a worker holds a campaign before another may claim it.
        poll_seconds: how long the worker sleeps when no campaign is due.
        rate_per_second: requests per second per owner, all its keys together (per server
            process), refilled steadily.
        rate_burst: requests an owner may make at once before the rate applies.
        max_active_campaigns: quota of campaigns per owner that are ready, running or paused.
        heavy_workers: forecasts and campaign creations (the expensive requests) one server
            process runs at the same time; more wait up to ``heavy_wait_seconds``, then get a 503.
        heavy_wait_seconds: how long an expensive request waits for a free worker.
        forecast_max_decisions: most candidate decisions one forecast may simulate (runs times
            iterations times customers per iteration); more is a 422 on ``runs``.
        webhook_schemes: URL schemes a webhook channel may use.
        webhook_hosts: host names a webhook channel may use; empty: any host.
        webhook_allow_private: allow webhook hosts that resolve to private, loopback or link-local
            addresses (off by default: a campaign must not reach into the server's network).
        webhook_secrets: signing secrets by the name requests give as ``channel.secret_ref``.
        metrics_token: bearer token for ``/metrics``; ``None``: any valid API key.
        audience_max_upload_bytes: largest audience file one ``POST /audiences`` may upload (413 beyond).
        audience_max_rows: most rows one audience import may have (422 beyond).
        audience_max_filters: most saved filters per audience.
        clock_speed: how fast the campaigns' schedule clock runs against real time (1: real
            time; 3600: an hour a second, to rehearse a schedule).
    """

    database_url: str = "sqlite:///data/campaign-opt.db"
    data_dir: Path = Path("data")
    run_worker: bool = True
    lease_seconds: float = 30.0
    poll_seconds: float = 0.2
    rate_per_second: float = 1000.0
    rate_burst: int = 2000
    max_active_campaigns: int = 50
    heavy_workers: int = 1
    heavy_wait_seconds: float = 10.0
    forecast_max_decisions: int = 1_000_000
    webhook_schemes: tuple[str, ...] = ("https",)
    webhook_hosts: tuple[str, ...] = ()
    webhook_allow_private: bool = False
    webhook_secrets: Mapping[str, str] = field(default_factory=dict)
    metrics_token: str | None = None
    audience_max_upload_bytes: int = 512 * 1024 * 1024
    audience_max_rows: int = 2_000_000
    audience_max_filters: int = 200
    clock_speed: float = 1.0


def _words(name: str, default: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in os.environ.get(name, default).split(",") if w.strip())


def settings_from_env() -> Settings:
    """Settings from the environment: ``DATABASE_URL``, ``DATA_DIR``, ``CAMPAIGN_OPT_WORKER``
    (``0``: no runner), ``CAMPAIGN_OPT_LEASE_SECONDS``, ``CAMPAIGN_OPT_RATE_PER_SECOND``,
    ``CAMPAIGN_OPT_RATE_BURST``, ``CAMPAIGN_OPT_MAX_ACTIVE_CAMPAIGNS``, ``CAMPAIGN_OPT_HEAVY_WORKERS``,
    ``CAMPAIGN_OPT_FORECAST_MAX_DECISIONS``,
    ``CAMPAIGN_OPT_WEBHOOK_SCHEMES`` and ``CAMPAIGN_OPT_WEBHOOK_HOSTS`` (comma-separated),
    ``CAMPAIGN_OPT_WEBHOOK_ALLOW_PRIVATE`` (``1``), ``CAMPAIGN_OPT_WEBHOOK_SECRET_<REF>`` and
    ``CAMPAIGN_OPT_METRICS_TOKEN``, ``CAMPAIGN_OPT_AUDIENCE_MAX_UPLOAD_BYTES`` and
    ``CAMPAIGN_OPT_AUDIENCE_MAX_ROWS``, ``CAMPAIGN_OPT_CLOCK_SPEED``."""
    env = os.environ
    data_dir = Path(env.get("DATA_DIR", "data"))
    url = env.get("DATABASE_URL", f"sqlite:///{data_dir / 'campaign-opt.db'}")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return Settings(
        database_url=url,
        data_dir=data_dir,
        run_worker=env.get("CAMPAIGN_OPT_WORKER", "1") != "0",
        lease_seconds=float(env.get("CAMPAIGN_OPT_LEASE_SECONDS", "30")),
        rate_per_second=float(env.get("CAMPAIGN_OPT_RATE_PER_SECOND", "1000")),
        rate_burst=int(env.get("CAMPAIGN_OPT_RATE_BURST", "2000")),
        max_active_campaigns=int(env.get("CAMPAIGN_OPT_MAX_ACTIVE_CAMPAIGNS", "50")),
        heavy_workers=int(env.get("CAMPAIGN_OPT_HEAVY_WORKERS", "1")),
        forecast_max_decisions=int(env.get("CAMPAIGN_OPT_FORECAST_MAX_DECISIONS", "1000000")),
        webhook_schemes=_words("CAMPAIGN_OPT_WEBHOOK_SCHEMES", "https"),
        webhook_hosts=_words("CAMPAIGN_OPT_WEBHOOK_HOSTS", ""),
        webhook_allow_private=env.get("CAMPAIGN_OPT_WEBHOOK_ALLOW_PRIVATE", "0") == "1",
        webhook_secrets={
            k.removeprefix(SECRET_ENV_PREFIX): v
            for k, v in env.items()
            if k.startswith(SECRET_ENV_PREFIX) and v
        },
        metrics_token=env.get("CAMPAIGN_OPT_METRICS_TOKEN") or None,
        audience_max_upload_bytes=int(
            env.get("CAMPAIGN_OPT_AUDIENCE_MAX_UPLOAD_BYTES", str(512 * 1024 * 1024))
        ),
        audience_max_rows=int(env.get("CAMPAIGN_OPT_AUDIENCE_MAX_ROWS", "2000000")),
        clock_speed=float(env.get("CAMPAIGN_OPT_CLOCK_SPEED", "1")),
    )
