# ruff: noqa: E501  (benchmark rows read best one per line)
"""Serving: /decide latency and throughput, event ingestion, one live-runner iteration.

Servers run as real ``campaign-opt serve`` processes on 127.0.0.1 (SQLite file, and the local
PostgreSQL when reachable). The clients run on the same 2 cores, so the figures include their
cost.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.pg import drop_schema, pg_schema
from serving.process import ServerProcess
from serving.schemas import CampaignCreate
from serving.service import Service
from serving.settings import Settings


def _setup(db_url: str, data: Path, **campaign: Any) -> tuple[Service, int, dict[str, str]]:
    svc = Service(Settings(database_url=db_url, data_dir=data, run_worker=False))
    svc.migrate()
    key = svc.create_key("bench")
    owner = svc.authenticate(key)
    assert owner is not None
    body = CampaignCreate.model_validate(
        {"name": "bench", "n_customers": 20_000, "policy": "thompson", **campaign}
    )
    cid = svc.create_campaign(owner, body)["id"]
    svc.transition(owner, cid, "start", "bench")
    return svc, cid, {"X-API-Key": key}


def _decide(url: str, cid: int, h: dict[str, str], quick: bool) -> list[dict[str, Any]]:
    n = 400 if quick else 2000
    lat: list[float] = []
    with httpx.Client(base_url=url, headers=h, timeout=10) as http:
        for i in range(50):  # warm the snapshot cache and the connection
            http.post(f"/campaigns/{cid}/decide", json={"customer": i})
        start = time.perf_counter()
        for i in range(n):  # open loop at 200 requests per second
            due = start + i / 200
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            t0 = time.perf_counter()
            r = http.post(f"/campaigns/{cid}/decide", json={"customer": i % 20_000})
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    p50, p99 = np.percentile(np.array(lat) * 1000, [50, 99])
    done = [0]
    stop = time.perf_counter() + (3 if quick else 10)

    def client(k: int) -> None:
        with httpx.Client(base_url=url, headers=h, timeout=10) as http:
            i = k
            while time.perf_counter() < stop:
                http.post(f"/campaigns/{cid}/decide", json={"customer": i % 20_000})
                i += 8
                done[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rps = done[0] / (time.perf_counter() - t0)
    return [
        {"benchmark": "/decide p50 at 200 req/s (one server, SQLite)", "value": p50, "unit": "ms", "target": ""},
        {"benchmark": "/decide p99 at 200 req/s (one server, SQLite)", "value": p99, "unit": "ms", "target": "<= 20 ms"},
        {"benchmark": "/decide closed loop, 8 clients (one server, SQLite)", "value": rps, "unit": "req/s", "target": ">= 1,000 req/s"},
    ]  # fmt: skip


def _events(db_url: str, label: str, data: Path, quick: bool) -> dict[str, Any]:
    svc, cid, h = _setup(db_url, data, customers_per_iteration=5000, budget=1e6, goal={"target": 1e9})
    svc.run_iteration(cid)  # decisions 0..n-1 exist
    with svc.engine.connect() as conn:
        from sqlalchemy import select

        from serving.models import CampaignRow

        n_dec = conn.execute(select(CampaignRow.decisions_done).where(CampaignRow.id == cid)).scalar_one()
    batches = 10 if quick else 40
    with (
        ServerProcess(data / "events-server", db_url, worker=False) as server,
        httpx.Client(base_url=server.url, headers=h, timeout=30) as http,
    ):
        t0 = time.perf_counter()
        for b in range(batches):
            events = [
                {"event_id": f"{b}-{i}", "decision_id": (b * 500 + i) % n_dec, "kind": "opened"}
                for i in range(500)
            ]
            r = http.post(f"/campaigns/{cid}/events", json={"events": events})
            assert r.status_code == 200 and len(r.json()["accepted"]) == 500, r.text[:300]
        rate = batches * 500 / (time.perf_counter() - t0)
    svc.engine.dispose()
    return {
        "benchmark": f"events ingested, batches of 500 ({label})",
        "value": rate,
        "unit": "events/s",
        "target": ">= 5,000/s",
    }


def _iteration(db_url: str, data: Path) -> dict[str, Any]:
    svc, cid, _ = _setup(
        db_url, data, n_customers=60_000, customers_per_iteration=50_000, budget=1e6, goal={"target": 1e9},
        policy="budgeted_ts",
    )  # fmt: skip
    t0 = time.perf_counter()
    assert svc.run_iteration(cid)
    took = time.perf_counter() - t0
    svc.engine.dispose()
    return {"benchmark": "live runner: one 50,000-customer iteration, decide to commit (SQLite)", "value": took, "unit": "s", "target": "<= 2 s"}  # fmt: skip


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = f"sqlite:///{root / 'decide.sqlite'}"
        svc, cid, h = _setup(db, root / "d", budget=1e6, goal={"target": 1e9})
        svc.engine.dispose()
        with ServerProcess(root / "d", db, worker=False) as server:
            rows += _decide(server.url, cid, h, quick)
        rows.append(_events(f"sqlite:///{root / 'events.sqlite'}", "SQLite", root / "e", quick))
        pg = pg_schema()
        if pg is not None:
            try:
                rows.append(_events(pg[0], "PostgreSQL", root / "p", quick))
            finally:
                drop_schema(pg[1])
        rows.append(_iteration(f"sqlite:///{root / 'iter.sqlite'}", root / "i"))
    return rows
