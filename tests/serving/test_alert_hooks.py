"""Signed alert webhooks (serving.alert_hooks) against a real receiver on 127.0.0.1, on SQLite and
PostgreSQL: signatures verify, each alert is delivered once, failures are retried, counted and
given up on."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from serving.alert_hooks import alert_payload, deliver_alerts, resolve_alert_webhook
from serving.channels import ChannelsMixin
from serving.db import make_engine, migrate
from serving.errors import InvalidError
from serving.models import AlertRow, AuditRow, CampaignRow, Owner
from serving.settings import Settings
from tests.webhook import http_receiver

SECRET = "alert-signing-key"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class AlertReceiver:
    """An owner's endpoint: verifies the signature, processes each alert once (by idempotency
    key), and answers the statuses it is told to for the next requests."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()  # idempotency key -> requests
        self.processed: Counter[str] = Counter()  # idempotency key -> times acted upon
        self.bodies: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.statuses: list[int] = []  # answers for the next requests (then 200)
        self.always: int | None = None  # answer every request with this status
        self.delay = 0.0
        self.lock = threading.Lock()

    def handle(self, body: bytes, headers: Any) -> int:
        time.sleep(self.delay)
        with self.lock:
            want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, headers.get("X-Signature", "")):
                self.bad_signatures += 1
                return 401
            doc = json.loads(body)
            key = headers["Idempotency-Key"]
            assert key == doc["idempotency_key"]
            self.requests[key] += 1
            status = self.always or (self.statuses.pop(0) if self.statuses else 200)
            if status < 300 and key not in self.processed:
                self.processed[key] += 1
                self.bodies.append(doc)
            return status


@pytest.fixture
def receiver() -> Iterator[tuple[AlertReceiver, str]]:
    rec = AlertReceiver()
    with http_receiver(rec.handle) as url:
        yield rec, f"{url}/alerts"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


def _campaign_with_alerts(engine: Engine, n: int = 3) -> tuple[int, list[int]]:
    """A campaign row and ``n`` alerts on it (ids in order)."""
    with Session(engine, expire_on_commit=False) as s:
        owner = Owner(name=f"owner-{time.monotonic_ns()}")
        s.add(owner)
        s.flush()
        camp = CampaignRow(
            owner_id=owner.id, name="c", request_json="{}", spec_json="{}", budget_micros=100_000_000
        )
        s.add(camp)
        s.flush()
        alerts = [
            AlertRow(
                campaign_id=camp.id,
                kind="budget",
                iteration=i,
                value=0.5 + i / 10,
                message=f"{50 + 10 * i}% of the budget is spent",
                at=NOW,
            )
            for i in range(n)
        ]
        s.add_all(alerts)
        s.commit()
        return camp.id, [a.id for a in alerts]


def _rows(engine: Engine, cid: int) -> list[AlertRow]:
    with Session(engine) as s:
        return list(s.scalars(select(AlertRow).where(AlertRow.campaign_id == cid).order_by(AlertRow.id)))


def _deliver(engine: Engine, cid: int, url: str, **kw: Any) -> int:
    return deliver_alerts(engine, cid, url, SECRET, now=lambda: NOW, **kw)


def test_signed_payload_delivered_once(engine: Engine, receiver: tuple[AlertReceiver, str]) -> None:
    rec, url = receiver
    cid, ids = _campaign_with_alerts(engine)
    assert _deliver(engine, cid, url) == 3
    assert rec.bad_signatures == 0
    keys = [f"alert-{cid}-{i}" for i in ids]
    assert rec.requests == Counter(dict.fromkeys(keys, 1)) and rec.processed == rec.requests
    first = rec.bodies[0]
    assert first == {
        "type": "campaign.alert",
        "idempotency_key": keys[0],
        "campaign_id": cid,
        "alert_id": ids[0],
        "kind": "budget",
        "iteration": 0,
        "value": 0.5,
        "message": "50% of the budget is spent",
        "at": "2026-12-03T12:00:00+00:00",
    }
    rows = _rows(engine, cid)
    assert [r.delivery_attempts for r in rows] == [1, 1, 1]
    assert all(r.delivered_at is not None and r.delivered_at.replace(tzinfo=UTC) == NOW for r in rows)
    # Run again: nothing is posted twice.
    assert _deliver(engine, cid, url) == 0
    assert sum(rec.requests.values()) == 3
    # A later alert goes out on the next call, alone.
    _add_alert(engine, cid)
    assert _deliver(engine, cid, url) == 1 and sum(rec.requests.values()) == 4


def _add_alert(engine: Engine, cid: int) -> int:
    with Session(engine, expire_on_commit=False) as s:
        a = AlertRow(campaign_id=cid, kind="goal_reached", iteration=9, value=1.0, message="done", at=NOW)
        s.add(a)
        s.commit()
        return a.id


def test_payload_is_json_ready() -> None:
    row = AlertRow(
        id=5, campaign_id=2, kind="goal_reached", iteration=1, value=float("inf"), message="m", at=NOW
    )
    doc = alert_payload(2, row)
    assert doc["value"] is None and doc["idempotency_key"] == "alert-2-5"
    json.dumps(doc, allow_nan=False)


def test_concurrent_threads_deliver_each_alert_once(
    engine: Engine, receiver: tuple[AlertReceiver, str]
) -> None:
    """Two threads in one process: the second sees the first at work and leaves it to it."""
    rec, url = receiver
    rec.delay = 0.05
    cid, ids = _campaign_with_alerts(engine, n=6)
    got: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        got.append(_deliver(engine, cid, url))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(got) == 6
    assert rec.processed == Counter({f"alert-{cid}-{i}": 1 for i in ids})
    assert sum(rec.requests.values()) == 6  # no alert was even posted twice
    assert all(r.delivered_at is not None and r.delivery_attempts == 1 for r in _rows(engine, cid))


def test_two_deliverers_on_separate_engines(
    engine: Engine, db_url: str, receiver: tuple[AlertReceiver, str]
) -> None:
    """Two deliverers that share nothing but the database (as two servers would): each attempt is
    claimed by one of them, each alert marked delivered once, and the receiver acts on each once."""
    rec, url = receiver
    rec.delay = 0.02
    other = make_engine(db_url)
    try:
        cid, ids = _campaign_with_alerts(engine, n=8)
        got: list[int] = []
        barrier = threading.Barrier(2)

        def run(eng: Engine) -> None:
            barrier.wait()
            got.append(_deliver(eng, cid, url))

        threads = [threading.Thread(target=run, args=(e,)) for e in (engine, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(got) == 8
        assert rec.processed == Counter({f"alert-{cid}-{i}": 1 for i in ids})
        rows = _rows(engine, cid)
        assert all(r.delivered_at is not None for r in rows)
        # Every request was a counted attempt: none was made without a claim.
        assert sum(r.delivery_attempts for r in rows) == sum(rec.requests.values())
    finally:
        other.dispose()


def test_server_error_then_success_is_retried(engine: Engine, receiver: tuple[AlertReceiver, str]) -> None:
    rec, url = receiver
    cid, ids = _campaign_with_alerts(engine)
    rec.statuses = [500]  # the first alert's first attempt
    assert _deliver(engine, cid, url) == 2  # a 5xx does not stop the others
    rows = _rows(engine, cid)
    assert rows[0].delivered_at is None and rows[0].delivery_attempts == 1
    assert _deliver(engine, cid, url) == 1
    rows = _rows(engine, cid)
    assert rows[0].delivered_at is not None and rows[0].delivery_attempts == 2
    assert rec.processed == Counter({f"alert-{cid}-{i}": 1 for i in ids})


def test_client_error_counts_as_an_attempt(
    engine: Engine, receiver: tuple[AlertReceiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    rec, url = receiver
    cid, _ = _campaign_with_alerts(engine, n=1)
    rec.statuses = [400]
    with caplog.at_level(logging.WARNING, logger="serving.alert_hooks"):
        assert _deliver(engine, cid, url) == 0
    assert _rows(engine, cid)[0].delivery_attempts == 1
    assert any("alert delivery failed" in m and "status=400" in m for m in caplog.messages)
    assert _deliver(engine, cid, url) == 1


def test_gives_up_after_max_attempts(
    engine: Engine, receiver: tuple[AlertReceiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    rec, url = receiver
    cid, ids = _campaign_with_alerts(engine, n=2)
    rec.always = 503
    with caplog.at_level(logging.WARNING, logger="serving.alert_hooks"):
        for _ in range(3):
            assert _deliver(engine, cid, url, max_attempts=3) == 0
    assert sum(rec.requests.values()) == 6
    rows = _rows(engine, cid)
    assert [r.delivery_attempts for r in rows] == [3, 3] and all(r.delivered_at is None for r in rows)
    assert sum("alert delivery given up" in m for m in caplog.messages) == 2
    with Session(engine) as s:
        audit = list(s.scalars(select(AuditRow).where(AuditRow.campaign_id == cid)))
    assert [a.action for a in audit] == ["alert_undelivered", "alert_undelivered"]
    assert json.loads(audit[0].changes_json) == {"alert_id": ids[0], "attempts": 3}
    # Given up: no more attempts, even once the receiver is back; the alerts are still there.
    rec.always = None
    assert _deliver(engine, cid, url, max_attempts=3) == 0
    assert sum(rec.requests.values()) == 6 and len(_rows(engine, cid)) == 2


def test_receiver_down_never_raises(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cid, _ = _campaign_with_alerts(engine)
    with caplog.at_level(logging.WARNING, logger="serving.alert_hooks"):
        assert _deliver(engine, cid, f"http://127.0.0.1:{port}/alerts") == 0
    # One attempt is spent; the rest of the call is skipped, the other alerts keep theirs.
    assert [r.delivery_attempts for r in _rows(engine, cid)] == [1, 0, 0]
    assert any("error=ConnectError" in m for m in caplog.messages)


def test_configuration_errors_raise(engine: Engine) -> None:
    with pytest.raises(ValueError, match="secret"):
        deliver_alerts(engine, 1, "http://127.0.0.1:9/", "")
    with pytest.raises(ValueError, match="max_attempts"):
        deliver_alerts(engine, 1, "http://127.0.0.1:9/", SECRET, max_attempts=0)


def test_url_and_secret_resolved_like_a_webhook_channel(tmp_path: Path) -> None:
    base = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path / "data", run_worker=False
    )
    strict = ChannelsMixin(dataclasses.replace(base, webhook_secrets={"hook": SECRET}))
    with pytest.raises(InvalidError, match="scheme") as err:
        resolve_alert_webhook(strict, "http://127.0.0.1:8080/alerts", "hook")
    assert err.value.field == ["alert_webhook", "url"]
    with pytest.raises(InvalidError, match="public"):
        resolve_alert_webhook(strict, "https://127.0.0.1:8080/alerts", "hook")
    opted_in = ChannelsMixin(
        dataclasses.replace(
            base, webhook_schemes=("http",), webhook_allow_private=True, webhook_secrets={"hook": SECRET}
        )
    )
    assert resolve_alert_webhook(opted_in, "http://127.0.0.1:8080/alerts", "hook") == SECRET
    with pytest.raises(InvalidError, match="no webhook secret") as err:
        resolve_alert_webhook(opted_in, "http://127.0.0.1:8080/alerts", "other")
    assert err.value.field == ["alert_webhook", "secret_ref"]
    for svc in (strict, opted_in):
        svc.engine.dispose()
