"""The owners' API with real HTTP semantics (TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

import zlib
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.models import CampaignRow, DecisionRow, LedgerRow
from serving.service import DECIDE_ID_BASE
from tests.serving.conftest import SMALL, auth, run_all


def _create(client: TestClient, h: dict[str, str], **over: Any) -> dict[str, Any]:
    r = client.post("/campaigns", json={**SMALL, **over}, headers=h)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_auth_is_required_and_both_headers_work(client: TestClient) -> None:
    assert client.get("/campaigns").status_code == 401
    assert client.get("/campaigns", headers={"Authorization": "Bearer nope"}).status_code == 401
    h = auth(client)
    key = h["Authorization"].removeprefix("Bearer ")
    assert client.get("/campaigns", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"


def test_owner_isolation(client: TestClient) -> None:
    alice, bob = auth(client, "alice"), auth(client, "bob")
    c = _create(client, alice)
    assert client.get(f"/campaigns/{c['id']}", headers=bob).status_code == 404
    assert client.post(f"/campaigns/{c['id']}/start", headers=bob).status_code == 404
    assert client.patch(f"/campaigns/{c['id']}", json={"budget": 500}, headers=bob).status_code == 404
    assert client.get(f"/campaigns/{c['id']}/report", headers=bob).status_code == 404
    ev = {"events": [{"event_id": "e", "decision_id": 0, "kind": "opened"}]}
    assert client.post(f"/campaigns/{c['id']}/events", json=ev, headers=bob).status_code == 404
    assert client.get("/campaigns", headers=bob).json() == []
    assert [x["id"] for x in client.get("/campaigns", headers=alice).json()] == [c["id"]]


def test_validation_errors_name_the_field(client: TestClient) -> None:
    h = auth(client)
    cases = [
        ({"scenario": "mars"}, "scenario"),
        ({"policy": "magic"}, "policy"),
        ({"policy": "saved:nothing"}, "policy"),
        ({"goal": {"target": -1}}, "goal"),
        ({"budget": 0}, "budget"),
        ({"colour": "red"}, "colour"),
        ({"allowed_arms": ["pigeon/x/none"]}, "body"),
        ({"channel": {"type": "webhook", "url": "https://example.com/x"}}, "channel"),
        ({"holdout": 0.9}, "holdout"),
    ]
    for over, field in cases:
        r = client.post("/campaigns", json={**SMALL, **over}, headers=h)
        assert r.status_code == 422, (over, r.text)
        locs = [d["loc"] for d in r.json()["detail"]]
        assert any(field in loc for loc in locs), (over, locs)
    r = client.post("/campaigns", content=b"{not json", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422
    assert client.get("/campaigns", headers=h).json() == []  # nothing half-created


def test_lifecycle_state_machine(client: TestClient) -> None:
    h = auth(client)
    cid = _create(client, h)["id"]
    assert client.post(f"/campaigns/{cid}/resume", headers=h).status_code == 409
    assert (
        client.post(f"/campaigns/{cid}/start", json={"reason": "go"}, headers=h).json()["status"] == "running"
    )
    r = client.post(f"/campaigns/{cid}/start", headers=h)
    assert r.status_code == 409 and "running" in r.json()["detail"]
    assert client.post(f"/campaigns/{cid}/pause", headers=h).json()["status"] == "paused"
    assert run_all(client) == 0  # paused: the runner leaves it alone
    assert client.post(f"/campaigns/{cid}/resume", headers=h).json()["status"] == "running"
    assert (
        client.post(f"/campaigns/{cid}/cancel", json={"reason": "enough"}, headers=h).json()["status"]
        == "cancelled"
    )
    for action in ("start", "pause", "resume", "cancel"):
        assert client.post(f"/campaigns/{cid}/{action}", headers=h).status_code == 409
    assert client.patch(f"/campaigns/{cid}", json={"budget": 900}, headers=h).status_code == 409
    actions = [a["action"] for a in client.get(f"/campaigns/{cid}/audit", headers=h).json()]
    assert actions == ["create", "start", "pause", "resume", "cancel"]


def test_campaign_runs_to_its_stop_within_budget(client: TestClient) -> None:
    h = auth(client)
    cid = _create(client, h)["id"]
    fc = client.get(f"/campaigns/{cid}/forecast?runs=1", headers=h)
    assert fc.status_code == 200 and 0 <= fc.json()["p_goal_within_budget"] <= 1
    assert client.get(f"/campaigns/{cid}/forecast?runs=0", headers=h).status_code == 422
    assert fc.json()["kind"] == "simulated"
    client.post(f"/campaigns/{cid}/start", headers=h)
    pace = client.get(f"/campaigns/{cid}/forecast", headers=h).json()  # after start: its own pace
    assert pace["kind"] == "pace" and pace["waves_done"] == 0
    run_all(client)
    c = client.get(f"/campaigns/{cid}", headers=h).json()
    assert c["status"] == "completed" and c["stop_reason"] in (
        "goal_reached",
        "max_iterations",
        "budget_exhausted",
    )
    assert c["money"]["spent"] <= c["money"]["budget"] and c["money"]["reserved"] == 0
    rep = client.get(f"/campaigns/{cid}/report", headers=h).json()
    its = client.get(f"/campaigns/{cid}/iterations", headers=h).json()
    assert [i["iteration"] for i in its] == list(range(len(its))) and len(its) == rep["iterations"]
    png = client.get(f"/campaigns/{cid}/report.png", headers=h)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).where(DecisionRow.campaign_id == cid)).scalar_one()
        charged = conn.execute(
            select(func.sum(LedgerRow.amount_micros)).where(
                LedgerRow.campaign_id == cid, LedgerRow.kind == "charge"
            )
        ).scalar_one()
    assert n == rep["sends"] > 0
    assert abs(float(charged) / 1e6 - rep["spend"]) < 1e-3  # the ledger rows add up to the spend
    # After the stop: events are applied at once (no iteration will come); a late conversion is refused.
    late = {
        "events": [
            {"event_id": "o", "decision_id": 0, "kind": "opened"},
            {"event_id": "c", "decision_id": 0, "kind": "converted", "revenue": 10},
        ]
    }
    answer = client.post(f"/campaigns/{cid}/events", json=late, headers=h).json()
    assert answer["accepted"] == ["o"] and "window closed" in answer["rejected"]["c"]  # the truth at once
    rejected = client.get(f"/campaigns/{cid}/events?status=rejected", headers=h).json()
    assert [e["event_id"] for e in rejected] == ["c"] and "window closed" in rejected[0]["reason"]
    after = client.get(f"/campaigns/{cid}/report", headers=h).json()
    assert after["opened"] == rep["opened"] + 1 and after["conversions"] == rep["conversions"]


def test_modify_is_validated_and_audited(client: TestClient) -> None:
    h = auth(client)
    cid = _create(client, h)["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    client.app.state.runner.run_pending()  # type: ignore[attr-defined]
    spent = client.get(f"/campaigns/{cid}", headers=h).json()["money"]["spent"]
    r = client.patch(f"/campaigns/{cid}", json={"budget": spent / 2}, headers=h)
    assert r.status_code == 422 and "budget" in r.text
    assert client.patch(f"/campaigns/{cid}", json={"allowed_arms": ["x/y/z"]}, headers=h).status_code == 422
    assert client.patch(f"/campaigns/{cid}", json={"reason": "only a reason"}, headers=h).status_code == 422
    r = client.patch(f"/campaigns/{cid}", json={"budget": 400, "reason": "more money"}, headers=h)
    assert r.status_code == 200 and r.json()["money"]["budget"] == 400
    audit = client.get(f"/campaigns/{cid}/audit", headers=h).json()
    assert audit[-1]["action"] == "modify" and audit[-1]["reason"] == "more money"


def test_events_are_idempotent_and_rejected_item_by_item(client: TestClient) -> None:
    h = auth(client)
    cid = _create(client, h)["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    client.app.state.runner.run_pending()  # type: ignore[attr-defined]
    batch = {
        "events": [
            {"event_id": "e1", "decision_id": 0, "kind": "opened"},
            {"event_id": "e2", "decision_id": 10**9, "kind": "opened"},
            {"event_id": "e3", "decision_id": DECIDE_ID_BASE + 77, "kind": "converted", "revenue": 5},
            {"event_id": "e1", "decision_id": 0, "kind": "opened"},
        ]
    }
    r = client.post(f"/campaigns/{cid}/events", json=batch, headers=h).json()
    assert r["accepted"] == ["e1"] and r["duplicates"] == ["e1"]
    assert set(r["rejected"]) == {"e2", "e3"} and "unknown decision" in r["rejected"]["e2"]
    again = client.post(f"/campaigns/{cid}/events", json=batch, headers=h).json()
    assert again["accepted"] == [] and again["duplicates"] == ["e1", "e1"]
    bad = {"events": [{"event_id": "x", "decision_id": 0, "kind": "teleported"}]}
    assert client.post(f"/campaigns/{cid}/events", json=bad, headers=h).status_code == 422
    assert [e["status"] for e in client.get(f"/campaigns/{cid}/events", headers=h).json()] == ["pending"]
    client.app.state.runner.run_pending()  # type: ignore[attr-defined]  # applies e1
    assert client.get(f"/campaigns/{cid}", headers=h).json()["iterations"] == 2
    applied = client.get(f"/campaigns/{cid}/events?status=applied", headers=h).json()
    assert [e["event_id"] for e in applied] == ["e1"]
    assert client.get(f"/campaigns/{cid}/events?status=lost", headers=h).status_code == 422


def test_decide_reserves_and_settles(client: TestClient) -> None:
    h = auth(client)
    cid = _create(client, h, budget=60)["id"]
    assert (
        client.post(f"/campaigns/{cid}/decide", json={"customer": 1}, headers=h).status_code == 409
    )  # ready
    client.post(f"/campaigns/{cid}/start", headers=h)
    assert client.post(f"/campaigns/{cid}/decide", json={"customer": 10**7}, headers=h).status_code == 422
    assert client.post(f"/campaigns/{cid}/decide", json={"customer": -1}, headers=h).status_code == 422
    made = []
    for customer in range(40):
        r = client.post(f"/campaigns/{cid}/decide", json={"customer": customer}, headers=h)
        assert r.status_code in (200, 409), r.text
        if r.status_code == 200 and r.json()["decision_id"] is not None:
            made.append(r.json())
    assert made
    money = client.get(f"/campaigns/{cid}", headers=h).json()["money"]
    assert abs(money["spent"] + money["reserved"] - sum(d["reserved"] for d in made)) < 1e-3
    assert money["spent"] + money["reserved"] <= 60 + 1e-9
    d = made[0]
    ev = {
        "events": [
            {
                "event_id": "c1",
                "decision_id": d["decision_id"],
                "kind": "converted",
                "revenue": 30,
                "offer_cost": 0,
            }
        ]
    }
    assert client.post(f"/campaigns/{cid}/events", json=ev, headers=h).json()["accepted"] == ["c1"]
    after = client.get(f"/campaigns/{cid}", headers=h).json()["money"]
    assert after["reserved"] < money["reserved"] or d["reserved"] == 0
    rep = client.get(f"/campaigns/{cid}/report", headers=h).json()
    assert rep["realtime"]["decisions"] == len(made)


def test_policies_and_metrics(client: TestClient) -> None:
    h = auth(client)
    pol = client.get("/policies", headers=h).json()
    assert "budgeted_ts" in pol["builtin"] and pol["saved"] == []
    spec = client.get("/openapi.json").json()
    assert "/campaigns/{cid}/decide" in spec["paths"] and client.get("/docs").status_code == 200
    assert client.get("/metrics").status_code == 401  # every owner's counts: not for anyone
    text = client.get("/metrics", headers=h).text
    assert "campaign_opt_http_request_seconds_bucket" in text and "campaign_opt_decide_requests" in text


def test_a_failing_iteration_pauses_the_campaign(client: TestClient, monkeypatch: Any) -> None:
    from agent import Campaign

    h = auth(client)
    cid = _create(client, h)["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)

    def broken(self: Campaign, now: float | None = None) -> None:
        raise RuntimeError("policy exploded")

    with monkeypatch.context() as m:
        m.setattr(Campaign, "tick", broken)
        assert run_all(client) == 0
    c = client.get(f"/campaigns/{cid}", headers=h).json()
    assert c["status"] == "paused" and c["iterations"] == 0 and c["money"]["spent"] == 0
    audit = client.get(f"/campaigns/{cid}/audit", headers=h).json()
    assert audit[-1]["action"] == "runner_error" and "policy exploded" in audit[-1]["reason"]
    assert client.get(f"/campaigns/{cid}/alerts", headers=h).json()[-1]["kind"] == "runner_error"
    assert client.post(f"/campaigns/{cid}/resume", headers=h).json()["status"] == "running"
    run_all(client)
    assert client.get(f"/campaigns/{cid}", headers=h).json()["status"] == "completed"


def test_an_unreadable_snapshot_pauses_the_campaign(client: TestClient) -> None:
    """A stored row that is not a valid snapshot (an old pickle, garbage) never crashes the runner
    and is never unpickled: the campaign is paused with the reason in its audit log."""
    import pickle  # only to write an old-style row: the server never reads one

    from sqlalchemy import update

    from serving.models import CampaignState

    h = auth(client)
    cid = _create(client, h)["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    svc = client.app.state.service  # type: ignore[attr-defined]
    for blob in (b"\x00garbage\xff" * 8, zlib.compress(pickle.dumps({"not": "a snapshot"}), 1)):
        with svc.engine.begin() as conn:
            conn.execute(update(CampaignState).where(CampaignState.campaign_id == cid).values(snapshot=blob))
        assert run_all(client) == 0
        c = client.get(f"/campaigns/{cid}", headers=h).json()
        assert c["status"] == "paused" and c["iterations"] == 0
        audit = client.get(f"/campaigns/{cid}/audit", headers=h).json()
        assert audit[-1]["action"] == "runner_error"
        assert "stored snapshot cannot be read" in audit[-1]["reason"]
        assert client.get(f"/campaigns/{cid}/alerts", headers=h).json()[-1]["kind"] == "runner_error"
        with svc.engine.begin() as conn:  # the row stays as it was found: nothing overwrote it
            stored = select(CampaignState.snapshot).where(CampaignState.campaign_id == cid)
            assert bytes(conn.execute(stored).scalar_one()) == blob
            conn.execute(update(CampaignRow).where(CampaignRow.id == cid).values(status="running"))


def test_concurrent_decide_calls_are_batched_within_budget(client: TestClient) -> None:
    import threading

    from serving.service import ConflictError

    h = auth(client)
    cid = _create(client, h, budget=30)["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    svc = client.app.state.service  # type: ignore[attr-defined]
    owner = svc.authenticate(h["Authorization"].removeprefix("Bearer "))
    made: list[Any] = []
    refused: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(25):
            try:
                out = svc.decide(owner, cid, (k * 25 + i) % 4000)
            except ConflictError as err:
                with lock:
                    refused.append(err.message)
                continue
            with lock:
                made.append(out)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [d.decision_id for d in made if d.decision_id is not None]
    assert len(ids) == len(set(ids)) > 0 and refused  # unique ids; the budget ran out
    assert sum(d.reserved for d in made) <= 30 + 1e-9
    money = client.get(f"/campaigns/{cid}", headers=h).json()["money"]
    assert abs(money["spent"] + money["reserved"] - sum(d.reserved for d in made)) < 1e-3
