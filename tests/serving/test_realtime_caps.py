"""`/decide` honours every cap the campaign loop enforces (frequency cap, channel budgets, the
per-customer cost cap, suppression, opt-outs), its contacts count toward the loop's caps, and
parallel calls cannot get around them; on SQLite and PostgreSQL, over HTTP."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.models import DecisionRow
from tests.serving.conftest import SMALL, auth

EMAIL_OFFER = "fixed:email/bestsellers/pct10"  # always this arm: what the caps leave is plain to see


def _campaign(client: TestClient, h: dict[str, str], **over: Any) -> int:
    r = client.post("/campaigns", json={**SMALL, "policy": EMAIL_OFFER, "budget": 5000, **over}, headers=h)
    assert r.status_code == 201, r.text
    cid: int = r.json()["id"]
    assert client.post(f"/campaigns/{cid}/start", headers=h).status_code == 200
    return cid


def _decide(client: TestClient, h: dict[str, str], cid: int, customer: int) -> dict[str, Any]:
    r = client.post(f"/campaigns/{cid}/decide", json={"customer": customer}, headers=h)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _reachable(client: TestClient, h: dict[str, str], k: int) -> list[int]:
    """``k`` customers an uncapped twin campaign (same audience) contacts on e-mail."""
    cid = _campaign(client, h)
    out = [c for c in range(60) if _decide(client, h, cid, c)["decision_id"] is not None][:k]
    client.post(f"/campaigns/{cid}/cancel", headers=h)
    assert len(out) == k
    return out


def test_frequency_cap_holds_for_decide_also_in_parallel(client: TestClient) -> None:
    h = auth(client)
    a, b = _reachable(client, h, 2)
    cid = _campaign(client, h, frequency_cap={"max_contacts": 1, "window_iterations": 100})
    got = [_decide(client, h, cid, a) for _ in range(5)]
    assert [d["decision_id"] is not None for d in got] == [True, False, False, False, False]
    answers: list[dict[str, Any]] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        barrier.wait()
        answers.append(_decide(client, h, cid, b))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(d["decision_id"] is not None for d in answers) == 1


def test_channel_budget_cost_cap_and_suppression_hold_for_decide(client: TestClient) -> None:
    h = auth(client)
    reachable = _reachable(client, h, 4)
    cid = _campaign(client, h, channel_budgets={"email": 0.01})
    assert _decide(client, h, cid, reachable[0])["decision_id"] is None  # $15 worst case, $0.01 channel
    cid = _campaign(client, h, channel_budgets={"email": 40})
    made = [_decide(client, h, cid, c) for c in reachable]
    assert sum(d["reserved"] for d in made) <= 40 and sum(d["decision_id"] is not None for d in made) == 2
    cid = _campaign(client, h, max_cost_per_customer=20)
    assert _decide(client, h, cid, reachable[0])["decision_id"] is not None
    assert _decide(client, h, cid, reachable[0])["decision_id"] is None  # a second $15 would pass $20
    cid = _campaign(client, h, suppression=[reachable[1]])
    assert _decide(client, h, cid, reachable[1])["decision_id"] is None
    assert _decide(client, h, cid, reachable[2])["decision_id"] is not None


def test_an_unsubscribe_reported_for_a_decision_opts_the_customer_out(client: TestClient) -> None:
    h = auth(client)
    a, b = _reachable(client, h, 2)
    cid = _campaign(client, h)
    d = _decide(client, h, cid, a)
    assert d["channel"] == "email"
    ev = {"event_id": "u", "decision_id": d["decision_id"], "kind": "unsubscribed"}
    assert client.post(f"/campaigns/{cid}/events", json={"events": [ev]}, headers=h).json()["accepted"] == [
        "u"
    ]
    assert _decide(client, h, cid, a)["decision_id"] is None  # email is the only arm this policy sends
    assert _decide(client, h, cid, b)["decision_id"] is not None


def test_decide_contacts_count_toward_the_loops_caps(client: TestClient) -> None:
    h = auth(client)
    cid = _campaign(
        client,
        h,
        n_customers=300,
        customers_per_iteration=300,
        frequency_cap={"max_contacts": 1, "window_iterations": 100},
        max_iterations=2,
    )
    early = {c for c in range(0, 300, 3) if _decide(client, h, cid, c)["decision_id"] is not None}
    assert len(early) > 50
    client.app.state.runner.run_pending()  # type: ignore[attr-defined]  # a wave over the whole audience
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        per_customer = conn.execute(
            select(DecisionRow.customer, func.count())
            .where(DecisionRow.campaign_id == cid)
            .group_by(DecisionRow.customer)
        ).all()
        runner = set(
            conn.execute(
                select(DecisionRow.customer).where(
                    DecisionRow.campaign_id == cid, DecisionRow.source == "runner"
                )
            ).scalars()
        )
    assert runner and not (runner & early)  # the wave left the customers /decide contacted alone
    assert max(n for _, n in per_customer) == 1


def test_an_iteration_racing_decide_calls_is_computed_again(client: TestClient, monkeypatch: Any) -> None:
    """Real-time contacts made while the runner computes a wave over the same customers: the
    wave's commit is refused and recomputed, so the frequency cap still holds."""
    from agent.loop import Campaign

    h = auth(client)
    cid = _campaign(
        client,
        h,
        n_customers=300,
        customers_per_iteration=300,
        frequency_cap={"max_contacts": 1, "window_iterations": 100},
        max_iterations=2,
        budget=100_000,  # room for both: only the cap can refuse the wave
    )
    svc = client.app.state.service  # type: ignore[attr-defined]
    owner = svc.authenticate(h["Authorization"].removeprefix("Bearer "))
    tick, racing = Campaign.tick, [range(0, 300, 2)]

    def tick_with_a_race(self: Campaign, now: float | None = None) -> Any:
        if racing:  # the first wave only: /decide calls arrive while it is being computed
            made = [svc.decide(owner, cid, c) for c in racing.pop()]
            assert sum(d.decision_id is not None for d in made) > 50
        return tick(self, now)

    monkeypatch.setattr(Campaign, "tick", tick_with_a_race)
    assert svc.run_iteration(cid) is False  # refused: it contacted customers /decide had just taken
    assert svc.run_iteration(cid) is True
    engine = svc.engine
    with engine.connect() as conn:
        counts = conn.execute(
            select(func.count()).where(DecisionRow.campaign_id == cid).group_by(DecisionRow.customer)
        ).scalars()
        assert max(counts) == 1
        runner = conn.execute(
            select(func.count()).where(DecisionRow.campaign_id == cid, DecisionRow.source == "runner")
        ).scalar_one()
    assert runner > 0
