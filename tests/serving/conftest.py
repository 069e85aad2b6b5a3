"""Fixtures of the serving tests: the same suite on SQLite and on PostgreSQL.

PostgreSQL is the local server (127.0.0.1:5432, database ``test``, trust auth); each test gets
its own schema, dropped afterwards. Without a reachable server those tests are skipped, with
the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings

PG_BASE = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_BASE.replace("+psycopg", ""), connect_timeout=2):
            return None
    except psycopg.Error as err:
        return f"PostgreSQL at {PG_BASE} is not reachable: {str(err).strip()[:200]}"


@pytest.fixture(scope="session")
def pg_skip_reason() -> str | None:
    return _pg_reachable()


@pytest.fixture
def pg_url(pg_skip_reason: str | None) -> Iterator[str]:
    """A fresh schema on the local PostgreSQL; the URL sets it as the search path."""
    if pg_skip_reason:
        pytest.skip(pg_skip_reason)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_BASE.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        run_worker=False,
        lease_seconds=5.0,
        rate_per_second=1000.0,
        rate_burst=1000,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as c:
        yield c
    app.state.service.engine.dispose()


def auth(client: TestClient, owner: str = "alice") -> dict[str, str]:
    key = client.app.state.service.create_key(owner)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {key}"}


def run_all(client: TestClient, limit: int = 200) -> int:
    """Drive the live runner in the test's thread until no campaign is due."""
    runner = client.app.state.runner  # type: ignore[attr-defined]
    n = 0
    while n < limit and runner.run_pending():
        n += 1
    return n


SMALL: dict[str, Any] = {
    "name": "small",
    "n_customers": 4000,
    "customers_per_iteration": 800,
    "goal": {"target": 40},
    "budget": 150,
    "max_iterations": 8,
    "policy": "thompson",
}
