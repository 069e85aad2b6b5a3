"""`campaign-opt keys create` prints a key once and stores only its hash."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from experiments.cli import app
from serving.models import ApiKey
from serving.service import Service, hash_key
from serving.settings import Settings


def test_keys_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    res = CliRunner().invoke(app, ["keys", "create", "--owner", "carol"], env={"DATABASE_URL": url})
    assert res.exit_code == 0, res.output
    key = res.stdout.strip().splitlines()[0]
    assert key.startswith("co_") and len(key) > 30
    svc = Service(Settings(database_url=url, data_dir=tmp_path, run_worker=False))
    assert svc.authenticate(key) is not None and svc.authenticate(key + "x") is None
    with svc.engine.connect() as conn:
        stored = conn.execute(select(ApiKey.key_hash)).scalars().all()
    assert stored == [hash_key(key)] and key not in stored
    bad = CliRunner().invoke(app, ["keys", "create", "--owner", "  "], env={"DATABASE_URL": url})
    assert bad.exit_code == 2 and "owner name" in bad.output
