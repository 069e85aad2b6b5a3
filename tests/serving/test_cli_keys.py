"""`campaign-opt keys create` prints a key once and stores only its hash."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from cli.app import app
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


def test_keys_list_and_revoke_stop_a_key_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = {"DATABASE_URL": url}
    keys = [
        CliRunner().invoke(app, ["keys", "create", "--owner", o], env=env).stdout.split()[0]
        for o in ("a", "b")
    ]
    svc = Service(Settings(database_url=url, data_dir=tmp_path, run_worker=False))
    assert all(svc.authenticate(k) is not None for k in keys)  # the server has seen both keys
    listed = CliRunner().invoke(app, ["keys", "list"], env=env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["owner"] for r in rows] == ["a", "b"] and all(r["revoked_at"] is None for r in rows)
    assert not any(k in listed.stdout for k in keys)  # never the keys themselves
    res = CliRunner().invoke(app, ["keys", "revoke", str(rows[0]["id"])], env=env)
    assert res.exit_code == 0, res.output
    assert svc.authenticate(keys[0]) is None and svc.authenticate(keys[1]) is not None  # at once
    again = CliRunner().invoke(app, ["keys", "revoke", str(rows[0]["id"])], env=env)
    assert again.exit_code == 2 and "no active key" in again.output
    rows = [
        json.loads(line) for line in CliRunner().invoke(app, ["keys", "list"], env=env).stdout.splitlines()
    ]
    assert rows[0]["revoked_at"] is not None and rows[1]["revoked_at"] is None
