"""Money safety under concurrency: each real-time hold is settled or released exactly once, on
SQLite and PostgreSQL, with real HTTP requests from parallel threads."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.models import CampaignRow, DecisionRow, LedgerRow
from tests.serving.conftest import SMALL, auth


def _ledger_sums(client: TestClient, cid: int) -> dict[str, int]:
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            select(LedgerRow.kind, func.sum(LedgerRow.amount_micros))
            .where(LedgerRow.campaign_id == cid)
            .group_by(LedgerRow.kind)
        ).all()
    return {k: int(v) for k, v in rows}


def _row(client: TestClient, cid: int) -> CampaignRow:
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        from sqlalchemy.orm import Session

        row: CampaignRow = Session(bind=conn).scalars(select(CampaignRow).where(CampaignRow.id == cid)).one()
        return row


def test_parallel_conversions_settle_each_hold_once(client: TestClient) -> None:
    h = auth(client)
    # An offer on every contact: each decision holds up to $15 until it converts or expires.
    body = {**SMALL, "budget": 300, "policy": "fixed:email/bestsellers/pct10"}
    r = client.post("/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.post(f"/campaigns/{cid}/start", headers=h).status_code == 200
    made: list[dict[str, Any]] = []
    for customer in range(40):
        d = client.post(f"/campaigns/{cid}/decide", json={"customer": customer}, headers=h)
        if d.status_code == 200 and d.json()["decision_id"] is not None:
            made.append(d.json())
    assert len(made) >= 5
    held_before = _row(client, cid).decide_held_micros
    assert held_before > 0
    barrier = threading.Barrier(6)
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def post(k: int) -> None:
        events = [
            {
                "event_id": f"c{k}-{d['decision_id']}",
                "decision_id": d["decision_id"],
                "kind": "converted",
                "revenue": 10,
                "offer_cost": round(d["reserved"] * 0.9, 2),
            }
            for d in made
        ]
        barrier.wait()
        got = client.post(f"/campaigns/{cid}/events", json={"events": events}, headers=h)
        assert got.status_code == 200, got.text
        with lock:
            answers.append(got.json())

    threads = [threading.Thread(target=post, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = sum(len(a["accepted"]) for a in answers)
    assert accepted == len(made)  # one conversion per decision, whichever request won it
    row = _row(client, cid)
    assert row.decide_held_micros >= 0
    assert row.spent_micros + row.reserved_micros + row.decide_spent_micros + row.decide_held_micros <= (
        row.budget_micros
    )
    sums = _ledger_sums(client, cid)
    assert sums.get("reserve", 0) - sums.get("charge", 0) - sums.get("release", 0) == (
        row.reserved_micros + row.decide_held_micros
    )
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        still_open = conn.execute(
            select(func.count()).where(DecisionRow.campaign_id == cid, DecisionRow.open.is_(True))
        ).scalar_one()
    assert still_open == 0


def test_every_money_movement_has_its_ledger_row(client: TestClient) -> None:
    """Iterations, real-time decisions, their settlement, events applied after a pause, and the
    cancel's release: the ledger's reserve - charge - release is always what is still reserved."""
    h = auth(client)
    body = {**SMALL, "budget": 400, "policy": "fixed:email/bestsellers/pct10", "customers_per_iteration": 10}
    cid = client.post("/campaigns", json=body, headers=h).json()["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)

    def balanced() -> None:
        row = _row(client, cid)
        sums = _ledger_sums(client, cid)
        in_ledger = sums.get("reserve", 0) - sums.get("charge", 0) - sums.get("release", 0)
        assert in_ledger == row.reserved_micros + row.decide_held_micros
        assert sums.get("charge", 0) == row.spent_micros + row.decide_spent_micros

    runner = client.app.state.runner  # type: ignore[attr-defined]
    runner.run_pending()
    balanced()
    d = client.post(f"/campaigns/{cid}/decide", json={"customer": 3999}, headers=h).json()
    balanced()
    assert _row(client, cid).reserved_micros > 0  # the runner's offers are still held
    client.post(f"/campaigns/{cid}/pause", headers=h)
    conv = {"event_id": "c", "decision_id": 0, "kind": "converted", "revenue": 20, "offer_cost": 1.5}
    assert client.post(f"/campaigns/{cid}/events", json={"events": [conv]}, headers=h).json()["accepted"] == [
        "c"
    ]
    balanced()
    conv = {"event_id": "d", "decision_id": d["decision_id"], "kind": "converted", "offer_cost": 2}
    client.post(f"/campaigns/{cid}/events", json={"events": [conv]}, headers=h)
    balanced()
    assert client.post(f"/campaigns/{cid}/cancel", headers=h).json()["status"] == "cancelled"
    balanced()
    row = _row(client, cid)
    assert row.reserved_micros == row.decide_held_micros == 0
