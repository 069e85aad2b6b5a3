"""Campaigns on an owner's audience and catalogue, on a schedule, through the API (SQLite and
PostgreSQL): catalogues, field-named errors, waves only when due on the server's clock, owner ids
out and back, arrival-time windows, opt-outs honoured after creation, the pace forecast, alerts
pushed to a signed webhook."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from agent.schedule import HOUR, ManualClock
from serving.app import create_app
from serving.settings import Settings
from tests.serving.conftest import auth, run_all
from tests.webhook import http_receiver

SECRET = "alert-secret"
START = datetime(2027, 1, 4, 9, tzinfo=UTC)
CATALOG = {
    "channels": [{"name": "email", "send_cost": 0.01}, {"name": "sms", "send_cost": 0.05}],
    "contents": [{"name": "news"}, {"name": "promo"}],
    "offers": [{"name": "ten", "discount": 0.1, "cap": 4}],
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with webhooks to 127.0.0.1 and the alert webhook's secret."""
    return dataclasses.replace(
        settings, webhook_schemes=("http",), webhook_allow_private=True, webhook_secrets={"ALERTS": SECRET}
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as c:
        app.state.service.clock = ManualClock(START.timestamp() - 2 * HOUR)
        yield c
    app.state.service.engine.dispose()


def clock(client: TestClient) -> ManualClock:
    out: ManualClock = client.app.state.service.clock  # type: ignore[attr-defined]
    return out


def _audience(client: TestClient, h: dict[str, str], tmp: Path, n: int = 400) -> int:
    rng = np.random.default_rng(0)
    path = tmp / "customers.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "recency", "channel", "email_consent", "sms_consent"])
        for i in range(n):
            w.writerow(
                [f"cust-{i:04d}", int(rng.integers(1, 13)), rng.choice(["Web", "Phone"]), 1, int(i % 2)]
            )
    r = client.post(
        "/audiences",
        params={"name": "mine"},
        content=path.read_bytes(),
        headers={**h, "Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["audience"]["id"])


def _create(client: TestClient, h: dict[str, str], aid: int, **extra: Any) -> Any:
    body = {
        "name": "live",
        "audience": {"id": aid},
        "catalog": CATALOG,
        "policy": "random",
        "goal": {"target": 30},
        "budget": 40,
        "customers_per_iteration": 150,
        "max_iterations": 6,
        "schedule": {"start": START.isoformat(), "every_hours": 24, "attribution_window_hours": 48},
        "channel": {"type": "file"},
        **extra,
    }
    return client.post("/campaigns", json=body, headers=h)


def test_catalogs_are_saved_validated_and_owned(client: TestClient) -> None:
    h, other = auth(client), auth(client, "bob")
    r = client.post("/catalogs", json={"name": "main", "catalog": CATALOG}, headers=h)
    assert r.status_code == 201, r.text
    assert "sms/promo/ten" in r.json()["arms"] and r.json()["arms"][0] == "no_contact"
    cid = r.json()["id"]
    assert client.post("/catalogs", json={"name": "main", "catalog": CATALOG}, headers=h).status_code == 409
    bad = {**CATALOG, "offers": [{"name": "free", "discount": 0.5}]}
    r = client.post("/catalogs", json={"name": "bad", "catalog": bad}, headers=h)
    assert r.status_code == 422 and "cap" in json.dumps(r.json())
    r = client.post("/catalogs", json={"name": "x", "catalog": {**CATALOG, "channels": []}}, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "catalog", "channels"]
    assert client.get(f"/catalogs/{cid}", headers=other).status_code == 404
    assert [c["name"] for c in client.get("/catalogs", headers=h).json()] == ["main"]


def test_a_campaign_on_an_audience_names_each_mistake(client: TestClient, tmp_path: Path) -> None:
    h = auth(client)
    aid = _audience(client, h, tmp_path)
    cases = [
        ({"catalog": None}, "catalog"),
        ({"channel": {"type": "simulated"}}, "webhook or file"),
        ({"n_customers": 1000}, "n_customers"),
        ({"audience": {"id": aid + 99}}, "no audience"),
        ({"audience": {"id": aid, "filter": "nosuch > 3"}}, "nosuch"),
        ({"policy": "oracle"}, "truth"),
        ({"policy": "feature_oracle"}, "needs a simulators.Simulator"),
        ({"catalog": {**CATALOG, "channels": [{"name": "mail", "send_cost": 1}]}}, "mail"),
        ({"schedule": {"every_hours": 24, "cron": "0 9 * * *"}}, "exactly one"),
        ({"schedule": {"cron": "61 * * * *"}}, "cron"),
        ({"attribution_window": 3}, "once"),
    ]
    for change, word in cases:
        r = _create(client, h, aid, **change)
        assert r.status_code == 422, (change, r.text)
        assert word in json.dumps(r.json()), (change, r.json())
    r = _create(client, h, aid, audience={"id": aid, "filter": "bad ("})
    assert r.json()["detail"][0]["loc"][:3] == ["body", "audience", "filter"]
    assert client.get("/campaigns", headers=h).json() == []  # nothing half-created


def test_a_policy_trained_on_other_features_is_refused_at_creation(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    from agent import Campaign, CampaignSpec, Goal
    from policies import make_policy
    from simulators import Simulator, load_scenario

    sim = Simulator(load_scenario("retail"), n_customers=2000)
    spec = CampaignSpec(goal=Goal(target=500), budget=50, customers_per_iteration=500, max_iterations=2)
    trained = make_policy("funnel_ts", sim, seed=0)
    Campaign(spec, sim, trained, seed=0).run()
    trained.save(settings.data_dir / "policies" / "retail-funnel")
    h = auth(client)
    aid = _audience(client, h, tmp_path)
    r = _create(client, h, aid, policy="saved:retail-funnel")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "policy"], r.text
    assert "cannot decide for this audience" in r.json()["detail"][0]["msg"]
    assert _create(client, h, aid, policy="funnel_ts:pacer=ppo").status_code == 201  # the PPO pacer transfers


def test_waves_run_on_the_clock_with_owner_ids_out_and_back(client: TestClient, tmp_path: Path) -> None:
    h = auth(client)
    aid = _audience(client, h, tmp_path)
    r = _create(client, h, aid, audience={"id": aid, "filter": "recency <= 6", "segment_by": "channel"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    started = client.post(f"/campaigns/{cid}/start", headers=h).json()
    assert datetime.fromisoformat(started["next_wave_at"]) == START  # not before the schedule's start
    assert run_all(client) == 0  # two hours early: nothing runs
    clk = clock(client)
    clk.set(START.timestamp())
    assert run_all(client) == 1  # one wave, then nothing until tomorrow
    folder = tmp_path / "data" / "exports" / f"campaign-{cid}"
    its = client.get(f"/campaigns/{cid}/iterations", headers=h).json()
    assert its and its[0]["sends"] > 0, (its, list(folder.parent.rglob("*")))
    batch = [json.loads(x) for x in next(folder.glob("*.jsonl")).read_text().splitlines()]
    assert batch and all(d["customer"].startswith("cust-") for d in batch)
    members = {m["customer_id"]: m for m in _members(client, h, aid)}
    assert all(float(members[d["customer"]]["values"]["recency"]) <= 6 for d in batch)  # the filter
    # Events by the owner's customer id: one inside the window, one after it.
    first, second = batch[0], batch[1]
    clk.advance(47 * HOUR)
    ok = {"event_id": "c1", "customer_id": first["customer"], "kind": "converted", "revenue": 30.0}
    assert client.post(f"/campaigns/{cid}/events", json={"events": [ok]}, headers=h).json()["accepted"] == [
        "c1"
    ]
    clk.advance(2 * HOUR)
    late = {"event_id": "c2", "customer_id": second["customer"], "kind": "converted", "revenue": 30.0}
    client.post(f"/campaigns/{cid}/events", json={"events": [late]}, headers=h)
    # Opt-outs posted now are honoured by the next wave.
    sms_people = [m for m, v in members.items() if v["contactable"].get("sms")]
    client.post(
        f"/audiences/{aid}/opt-outs", json={"channel": "email", "customer_ids": list(members)}, headers=h
    )
    assert run_all(client) >= 1
    rejected = client.get(f"/campaigns/{cid}/events", params={"status": "rejected"}, headers=h).json()
    assert [e["event_id"] for e in rejected] == ["c2"] and "attribution window" in rejected[0]["reason"]
    rep = client.get(f"/campaigns/{cid}/report", headers=h).json()
    assert rep["conversions"] == 1
    assert set(rep["results_by_segment"]) <= {"Web", "Phone"}
    files = sorted(folder.glob("*.jsonl"))
    assert len(files) == 2  # the second wave: e-mail opted out, so only SMS to those who consented
    later = [json.loads(x) for x in files[-1].read_text().splitlines()]
    assert later and all(d["channel"] == "sms" and d["customer"] in sms_people for d in later)
    pace = client.get(f"/campaigns/{cid}/forecast", headers=h).json()
    assert pace["kind"] == "pace" and pace["waves_done"] >= 1 and "message" in pace


def _members(client: TestClient, h: dict[str, str], aid: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = client.get(
            f"/audiences/{aid}/members", params={"offset": offset, "limit": 1000}, headers=h
        ).json()
        rows = page["members"] if isinstance(page, dict) else page
        out += rows
        if len(rows) < 1000:
            return out
        offset += 1000


class _AlertReceiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.bad = 0

    def handle(self, body: bytes, headers: Any) -> int:
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(want, headers.get("X-Signature", "")):
            self.bodies.append(json.loads(body))
        else:
            self.bad += 1
        return 200


@pytest.fixture
def alert_receiver() -> Iterator[tuple[_AlertReceiver, str]]:
    rec = _AlertReceiver()
    with http_receiver(rec.handle) as url:
        yield rec, f"{url}/alerts"


def test_alerts_are_pushed_signed_to_the_alert_webhook(
    client: TestClient, alert_receiver: tuple[_AlertReceiver, str]
) -> None:
    rec, url = alert_receiver
    h = auth(client)
    body = {
        "name": "alerted",
        "n_customers": 3000,
        "customers_per_iteration": 1000,
        "goal": {"target": 10},
        "budget": 20,
        "max_iterations": 6,
        "policy": "thompson",
        "alert_fractions": [0.01],
        "alert_webhook": {"url": url, "secret_ref": "ALERTS"},
    }
    assert client.post("/campaigns", json={**body, "alert_webhook": {"url": url, "secret_ref": "NOPE"}},
                       headers=h).status_code == 422  # fmt: skip
    cid = client.post("/campaigns", json=body, headers=h).json()["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    run_all(client)
    listed = client.get(f"/campaigns/{cid}/alerts", headers=h).json()
    assert listed and rec.bad == 0
    assert sorted(b["kind"] for b in rec.bodies) == sorted(a["kind"] for a in listed)
    assert len({b["idempotency_key"] for b in rec.bodies}) == len(rec.bodies)  # each alert once
