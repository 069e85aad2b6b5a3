"""End to end: a real campaign on the Hillstrom customers, on the clock, through a webhook.

The Hillstrom file (64,000 real customers) is imported over HTTP as an audience with its own
columns; a catalogue of its two e-mail contents is saved; a campaign on a schedule (a wave a day,
a 48-hour attribution window) sends through the signed webhook channel to a receiver on
127.0.0.1. The receiver plays the owner's sender and customers: it maps each decision's customer
id to a customer of the calibrated hillstrom simulator, lets the simulator answer, and posts the
events back to the API by customer id after a delay. The server's clock runs fast (a day in 6 s),
so the test sees a week of waves in under a minute: every conversion must be counted, nothing that
arrived inside its window rejected as late, the goal reached within the budget. Real HTTP both
ways (uvicorn on 127.0.0.1, the background runner), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from serving.app import create_app
from serving.process import free_port
from serving.settings import Settings
from simulators import Simulator, load_scenario
from simulators.types import EventKind
from tests.webhook import http_receiver

HILLSTROM = Path(__file__).resolve().parents[3] / "shared" / "data" / "hillstrom.csv"
SECRET = "e2e-signing-secret"
DAY_SECONDS = 6.0  # real seconds per day on the server's clock (a wave of 64,000 customers takes a few)
SPEED = 86_400 / DAY_SECONDS
SCHEMA = {
    "id_column": "customer_id",
    "columns": {
        "recency": "numeric",
        "history": "numeric",
        "mens": "numeric",
        "womens": "numeric",
        "newbie": "numeric",
        "zip_code": "categorical",
        "channel": "categorical",
    },
    "consent": {"email": "email_consent"},
}


class Customers:
    """The owner's sender and customers: the hillstrom simulator answers each batch; events go
    back to the API by customer id after a delay (in real seconds) on a timer."""

    def __init__(self, n: int, api: str, key: str, campaign: list[int]) -> None:
        self.sim = Simulator(load_scenario("hillstrom"), n_customers=n)
        self.sim.reset(seed=7)
        self.arms = self.sim.arms
        self.api, self.key, self.campaign = api, key, campaign
        self.lock = threading.Lock()
        self.batches = 0
        self.bad_signatures = 0
        self.posted: dict[str, dict[str, Any]] = {}  # event id -> the event
        self.answers: list[dict[str, Any]] = []
        self.timers: list[threading.Timer] = []
        self.rng = np.random.default_rng(3)

    def handle(self, body: bytes, signature: str) -> int:
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, signature):
            self.bad_signatures += 1
            return 401
        doc = json.loads(body)
        decisions = doc["decisions"]
        with self.lock:
            self.batches += 1
            ids = np.array([d["decision_id"] for d in decisions], dtype=np.int64)
            customers = np.array([int(d["customer"][1:]) for d in decisions], dtype=np.int64)
            arms = np.array([self.arms.index(d["arm"]) for d in decisions], dtype=np.int64)
            by_id = {d["decision_id"]: d["customer"] for d in decisions}
            got = self.sim.send(ids, customers, arms)
            self.sim.advance()
        events = []
        for d, kind, revenue in zip(
            got.decision_id.tolist(), got.kind.tolist(), got.revenue.tolist(), strict=True
        ):
            if d < 0 or kind not in (EventKind.CONVERTED, EventKind.OPENED):
                continue
            name = EventKind(kind).name.lower()
            ev = {"event_id": f"{name}-{d}", "customer_id": by_id[d], "kind": name}
            if kind == EventKind.CONVERTED:
                ev["revenue"] = round(revenue, 2)
            events.append(ev)
        delay = float(self.rng.uniform(0.1, 0.6))  # 1.6 to 9.6 hours on the server's clock
        timer = threading.Timer(delay, self.post, args=(events,))
        timer.daemon = True
        self.timers.append(timer)
        timer.start()
        return 200

    def post(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 5000):
            part = events[start : start + 5000]
            r = httpx.post(
                f"{self.api}/campaigns/{self.campaign[0]}/events",
                json={"events": part},
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=60,
            )
            with self.lock:
                self.answers.append(r.json())
                self.posted.update((e["event_id"], e) for e in part)

    def wait_posted(self) -> None:
        for t in list(self.timers):
            t.join(timeout=30)


@pytest.fixture
def hillstrom_csv(tmp_path: Path) -> Path:
    if not HILLSTROM.is_file():
        pytest.skip(f"the Hillstrom file is not at {HILLSTROM}")
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # The owner's columns: the experiment's assignment and outcomes are not customer data.
    table = pacsv.read_csv(HILLSTROM).drop_columns(["segment", "visit", "conversion", "spend"])
    n = table.num_rows
    table = table.append_column("customer_id", pa.array([f"H{i:05d}" for i in range(n)]))
    table = table.append_column("email_consent", pa.array(np.ones(n, dtype=np.int64)))
    out = tmp_path / "hillstrom_audience.csv"
    pacsv.write_csv(table, out)
    return out


def test_a_real_campaign_on_hillstrom_customers_on_the_clock(
    hillstrom_csv: Path, db_url: str, tmp_path: Path
) -> None:
    import uvicorn

    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        run_worker=True,
        poll_seconds=0.05,
        lease_seconds=30.0,
        webhook_schemes=("http",),
        webhook_allow_private=True,
        webhook_secrets={"E2E": SECRET},
        clock_speed=SPEED,
    )
    app = create_app(settings)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    api = f"http://127.0.0.1:{port}"
    key = app.state.service.create_key("owner")
    h = {"Authorization": f"Bearer {key}"}
    campaign: list[int] = []
    customers = Customers(64_000, api, key, campaign)

    stack = contextlib.ExitStack()
    receiver = http_receiver(lambda body, headers: customers.handle(body, headers.get("X-Signature", "")))
    try:
        receiver_url = stack.enter_context(receiver)
        with httpx.Client(base_url=api, headers=h, timeout=120) as c:
            # 1. The audience: 64,000 real customers with their own columns.
            r = c.post(
                "/audiences",
                params={"name": "hillstrom", "schema": json.dumps(SCHEMA)},
                content=hillstrom_csv.read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
            assert r.status_code == 201, r.text
            audience = r.json()["audience"]
            assert r.json()["inserted"] == 64_000
            # 2. The catalogue: the experiment's two e-mails.
            cat = c.post(
                "/catalogs",
                json={
                    "name": "hillstrom-emails",
                    "catalog": {
                        "channels": [{"name": "email", "send_cost": 0.001}],
                        "contents": [{"name": "mens"}, {"name": "womens"}],
                    },
                },
            )
            assert cat.status_code == 201, cat.text
            assert cat.json()["arms"] == ["no_contact", "email/mens/none", "email/womens/none"]
            # 3. The campaign on a schedule, through the signed webhook.
            r = c.post(
                "/campaigns",
                json={
                    "name": "hillstrom live",
                    "audience": {"id": audience["id"], "segment_by": "zip_code"},
                    "catalog_id": cat.json()["id"],
                    "policy": "funnel_ts",
                    "goal": {"target": 300},
                    "budget": 150,
                    "customers_per_iteration": 8000,
                    "max_iterations": 12,
                    "schedule": {"every_hours": 24, "attribution_window_hours": 48},
                    "channel": {"type": "webhook", "url": f"{receiver_url}/send",
                                "secret_ref": "E2E"},
                },
            )  # fmt: skip
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            campaign.append(cid)
            assert r.json()["audience_id"] == audience["id"]
            assert c.post(f"/campaigns/{cid}/start").status_code == 200
            # 4. Let it run: waves a (fast) day apart until it completes.
            deadline = time.time() + 240
            while time.time() < deadline:
                status = c.get(f"/campaigns/{cid}").json()["status"]
                if status not in ("running", "ready"):
                    break
                time.sleep(0.5)
            customers.wait_posted()
            camp = c.get(f"/campaigns/{cid}").json()
            assert camp["status"] == "completed", camp
            rep = c.get(f"/campaigns/{cid}/report").json()
            rejected = c.get(
                f"/campaigns/{cid}/events", params={"status": "rejected", "limit": 10_000}
            ).json()
            forecast = c.get(f"/campaigns/{cid}/forecast").json()
            iterations = c.get(f"/campaigns/{cid}/iterations").json()
    finally:
        stack.close()
        srv.should_exit = True
        thread.join(timeout=60)
    # Every conversion the customers made arrived inside its window and was counted.
    converted = [e for e in customers.posted.values() if e["kind"] == "converted"]
    assert not rejected, [(e["event_id"], e["reason"]) for e in rejected[:3]] + [len(rejected)]
    assert all(not a["rejected"] for a in customers.answers), [
        list(a["rejected"].items())[:3] for a in customers.answers if a["rejected"]
    ][:3]
    assert rep["conversions"] == len(converted)
    summary = {k: rep[k] for k in ("conversions", "spend", "stop_reason", "iterations", "sends")}
    assert rep["goal_reached"] and rep["spend"] <= 150 and rep["stop_reason"] == "goal_reached", summary
    assert customers.bad_signatures == 0 and customers.batches >= 2
    # Waves ran a day apart on the server's clock, not back to back.
    assert len(iterations) >= 2
    assert forecast["kind"] == "pace" and forecast["waves_done"] >= 2
    # The report breaks the results down by the audience's zip_code segments.
    segments = rep["results_by_segment"]
    assert set(segments) == {"Urban", "Surburban", "Rural"}
    assert sum(s["conversions"] for s in segments.values()) == rep["conversions"]
    assert sum(s["sends"] for s in segments.values()) == rep["sends"]
