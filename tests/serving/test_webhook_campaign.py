"""A live campaign on a real channel: the runner POSTs signed batches to a webhook on 127.0.0.1,
each decision reaches the receiver once, and the sender's conversions come back through the API."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.serving.conftest import SMALL, auth, run_all
from tests.webhook import SECRET, Receiver


def test_webhook_campaign_end_to_end(client: TestClient, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    h = auth(client)
    body = {**SMALL, "max_iterations": 3, "channel": {"type": "webhook", "url": url, "secret": SECRET}}
    r = client.post("/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["channel"] == "webhook" and "secret" not in json.dumps(c)  # the secret is never shown
    cid = c["id"]
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
