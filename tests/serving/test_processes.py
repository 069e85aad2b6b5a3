"""Real server processes: end to end over HTTP, a kill -9 mid-campaign, and /decide from eight
parallel clients against two servers sharing one PostgreSQL database."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from serving.models import CampaignRow, DecisionRow, IterationRow, LedgerRow
from serving.process import ServerProcess
from serving.service import Service
from serving.settings import Settings


def _service(db_url: str, data_dir: Path) -> Service:
    svc = Service(Settings(database_url=db_url, data_dir=data_dir, run_worker=False))
    svc.migrate()
    return svc


def _wait(url: str, h: dict[str, str], cid: int, until: Any, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c: dict[str, Any] = httpx.get(f"{url}/campaigns/{cid}", headers=h, timeout=10).json()
        if until(c):
            return c
        time.sleep(0.2)
    raise AssertionError(f"campaign {cid} did not get there in {timeout} s: {c}")


def test_kill_9_mid_campaign_then_restart_completes_safely(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    svc = _service(db_url, tmp_path)
    h = {"X-API-Key": svc.create_key("alice")}
    server = ServerProcess(tmp_path, db_url, lease_seconds=2.0).start()
    url = server.url
    try:
        body = {
            "name": "crash",
            "n_customers": 20_000,
            "customers_per_iteration": 4000,
            "goal": {"target": 10_000},
            "budget": 400,
            "max_iterations": 10,
            "policy": "thompson",
        }
        r = httpx.post(f"{url}/campaigns", json=body, headers=h, timeout=60)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        httpx.post(f"{url}/campaigns/{cid}/start", headers=h, timeout=30)
        _wait(url, h, cid, lambda c: c["iterations"] >= 2)
        server.kill()  # kill -9 mid-campaign, possibly mid-iteration
    finally:
        server.stop()
    with svc.engine.connect() as conn:
        at_kill = conn.execute(select(CampaignRow.iterations_done).where(CampaignRow.id == cid)).scalar_one()
    assert at_kill < 10
    with ServerProcess(tmp_path, db_url, lease_seconds=2.0) as server:
        c = _wait(server.url, h, cid, lambda c: c["status"] == "completed")
        rep = httpx.get(f"{server.url}/campaigns/{cid}/report", headers=h, timeout=30).json()
    assert c["money"]["spent"] <= c["money"]["budget"] + 1e-9 and c["money"]["reserved"] == 0
    with svc.engine.connect() as conn:
        ids = (
            conn.execute(select(DecisionRow.decision_id).where(DecisionRow.campaign_id == cid))
            .scalars()
            .all()
        )
        its = (
            conn.execute(
                select(IterationRow.iteration)
                .where(IterationRow.campaign_id == cid)
                .order_by(IterationRow.iteration)
            )
            .scalars()
            .all()
        )
    assert len(ids) == len(set(ids)) == rep["sends"]  # no decision twice, none lost
    assert sorted(ids) == list(range(len(ids)))
    assert list(its) == list(range(rep["iterations"]))


def test_parallel_decide_on_two_servers_never_exceeds_the_budget(pg_url: str, tmp_path: Path) -> None:
    svc = _service(pg_url, tmp_path)
    h = {"Authorization": f"Bearer {svc.create_key('alice')}"}
    servers = [ServerProcess(tmp_path / f"s{i}", pg_url, lease_seconds=2.0).start() for i in range(2)]
    try:
        url0 = servers[0].url
        body = {
            "name": "race",
            "n_customers": 5000,
            "customers_per_iteration": 100,
            "goal": {"target": 10_000},
            "budget": 25,
            "max_iterations": 50,
            "policy": "random",
        }
        cid = httpx.post(f"{url0}/campaigns", json=body, headers=h, timeout=60).json()["id"]
        httpx.post(f"{url0}/campaigns/{cid}/start", headers=h, timeout=30)
        codes: list[int] = []
        lock = threading.Lock()

        def client(k: int) -> None:
            url = servers[k % 2].url
            with httpx.Client(timeout=30) as http:
                for i in range(40):
                    r = http.post(
                        f"{url}/campaigns/{cid}/decide", json={"customer": (k * 40 + i) % 5000}, headers=h
                    )
                    with lock:
                        codes.append(r.status_code)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for server in servers:
            server.stop()
    assert set(codes) <= {200, 409}, set(codes)
    assert codes.count(200) > 0 and codes.count(409) > 0  # the budget was the binding limit
    with svc.engine.connect() as conn:
        row = conn.execute(select(CampaignRow).where(CampaignRow.id == cid)).one()
        decided = conn.execute(
            select(func.coalesce(func.sum(DecisionRow.reserved_micros), 0)).where(
                DecisionRow.campaign_id == cid, DecisionRow.source == "decide"
            )
        ).scalar_one()
        charged = conn.execute(
            select(func.coalesce(func.sum(LedgerRow.amount_micros), 0)).where(
                LedgerRow.campaign_id == cid, LedgerRow.kind == "charge"
            )
        ).scalar_one()
    committed = row.spent_micros + row.reserved_micros + row.decide_spent_micros + row.decide_held_micros
    assert committed <= row.budget_micros
    assert row.decide_spent_micros + row.decide_held_micros <= decided
    assert charged <= row.budget_micros  # every dollar ever charged, runner and /decide together


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
