"""A live campaign on a real channel: the runner POSTs signed batches to a webhook on 127.0.0.1,
each decision reaches the receiver once, and the sender's conversions come back through the API."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.app import create_app
from serving.models import CampaignRow, CampaignState
from serving.settings import Settings
from tests.serving.conftest import SMALL, auth, run_all
from tests.webhook import SECRET, Receiver


@pytest.fixture
def webhook_client(settings: Settings) -> Iterator[TestClient]:
    """A server that may post to 127.0.0.1 over http (refused by default) and knows the secret."""
    opted_in = dataclasses.replace(
        settings,
        webhook_schemes=("http", "https"),
        webhook_allow_private=True,
        webhook_secrets={"receiver": SECRET},
    )
    app = create_app(opted_in)
    with TestClient(app) as c:
        yield c
    app.state.service.engine.dispose()


def test_webhook_campaign_end_to_end(webhook_client: TestClient, receiver: tuple[Receiver, str]) -> None:
    client = webhook_client
    rec, url = receiver
    h = auth(client)
    channel = {"type": "webhook", "url": url, "secret_ref": "receiver"}
    body = {**SMALL, "max_iterations": 3, "channel": channel}
    r = client.post("/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["channel"] == "webhook" and SECRET not in json.dumps(c)  # the secret is never shown
    cid = c["id"]
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:  # nor stored: not in the request, not in the snapshot
        stored = conn.execute(select(CampaignRow.request_json)).scalar_one()
        blob = conn.execute(select(CampaignState.snapshot)).scalar_one()
    assert SECRET not in stored and SECRET.encode() not in zlib.decompress(blob)
    client.post(f"/campaigns/{cid}/start", headers=h)
    client.app.state.runner.run_pending()  # type: ignore[attr-defined]  # iteration 0: one batch
    first = sorted(rec.sent)
    assert first and set(rec.sent.values()) == {1} and rec.bad_signatures == 0
    # The sender reports conversions for two of the decisions it sent; they count at the next iteration.
    ids = [int(k.rsplit(":", 1)[1]) for k in first[:2]]
    events: list[dict[str, Any]] = [
        {"event_id": f"conv-{d}", "decision_id": d, "kind": "converted", "revenue": 40.0} for d in ids
    ]
    assert client.post(f"/campaigns/{cid}/events", json={"events": events}, headers=h).json()["accepted"] == [
        e["event_id"] for e in events
    ]
    run_all(client)
    rep = client.get(f"/campaigns/{cid}/report", headers=h).json()
    assert rep["status"] == "completed" and rep["channel"] == "webhook"
    assert rep["conversions"] == 2 and rep["revenue"] == 80.0
    assert len(rec.sent) == rep["sends"] and set(rec.sent.values()) == {1}
    assert rep["spend"] <= rep["budget"]


def _decisions_in_db(client: TestClient) -> int:
    from sqlalchemy import func

    from serving.models import DecisionRow

    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(DecisionRow)).scalar_one())


def test_batches_leave_only_after_their_iteration_is_committed(
    webhook_client: TestClient, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox: a receiver never sees a decision the database does not hold; an iteration whose
    commit is lost sends nothing (its recomputation sends once); a batch committed but not delivered
    (the process died in between) goes first at the next iteration, once."""
    from serving.errors import ConflictError
    from serving.runner import RunnerMixin

    client = webhook_client
    rec, url = receiver
    h = auth(client)
    body = {
        **SMALL,
        "max_iterations": 3,
        "channel": {"type": "webhook", "url": url, "secret_ref": "receiver"},
    }
    cid = client.post("/campaigns", json=body, headers=h).json()["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    svc = client.app.state.service  # type: ignore[attr-defined]
    seen_in_db: list[int] = []
    handle = rec.handle

    def handle_and_count(body: bytes, headers: Any) -> int:
        seen_in_db.append(_decisions_in_db(client))
        return handle(body, headers)

    monkeypatch.setattr(rec, "handle", handle_and_count)
    # 1. The commit is lost (a concurrent change): nothing was sent.
    check = RunnerMixin._check_realtime_meanwhile
    calls = {"n": 0}

    def lose_first(self: Any, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConflictError("lost to a concurrent change")
        check(self, *args)

    monkeypatch.setattr(RunnerMixin, "_check_realtime_meanwhile", lose_first)
    assert svc.run_iteration(cid) is False and rec.requests == 0
    # 2. Computed again and committed: sent once, after the decisions were stored.
    assert svc.run_iteration(cid) is True
    first = set(rec.sent)
    assert first and seen_in_db and seen_in_db[0] == len(first)
    # 3. Committed, then the process "dies" before delivering: the next iteration sends it first.
    monkeypatch.setattr(RunnerMixin, "_flush", lambda self, cid, channel, camp: None)
    assert svc.run_iteration(cid) is True
    assert set(rec.sent) == first  # the second wave is committed but still in the outbox
    monkeypatch.undo()
    monkeypatch.setattr(rec, "handle", handle_and_count)
    run_all(client)
    rep = client.get(f"/campaigns/{cid}/report", headers=h).json()
    assert rep["status"] == "completed"
    assert len(rec.sent) == rep["sends"] == _decisions_in_db(client)
    assert set(rec.sent.values()) == {1}  # every decision reached the receiver once
