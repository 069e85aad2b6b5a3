"""Bad input never reaches the database or the unpickler, and never gives a 500: every case is
a 422 naming the field (or the documented 401/404/409/429/503), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from policies import make_policy
from serving.app import create_app
from serving.models import CampaignRow
from serving.service import CHANNEL_FAILED
from serving.settings import Settings
from simulators import Simulator, load_scenario
from tests.serving.conftest import SMALL, auth
from tests.webhook import SECRET, Receiver


def _raw(client: TestClient, method: str, url: str, text: str, h: dict[str, str]) -> Any:
    """A request whose body is sent as written (NaN, Infinity and escapes are not JSON's)."""
    return client.request(
        method, url, content=text.encode(), headers={**h, "Content-Type": "application/json"}
    )


def _field_422(r: Any, field: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text)
    locs = [d["loc"] for d in r.json()["detail"]]
    assert any(field in loc for loc in locs), locs


@pytest.fixture
def started(client: TestClient) -> tuple[dict[str, str], int]:
    h = auth(client)
    cid = client.post("/campaigns", json=SMALL, headers=h).json()["id"]
    client.post(f"/campaigns/{cid}/start", headers=h)
    return h, cid


def test_non_finite_numbers_and_bad_text_are_422(
    client: TestClient, started: tuple[dict[str, str], int]
) -> None:
    h, cid = started
    base = json.dumps(SMALL)[1:-1]
    creates = [
        ('"budget": NaN', "budget"),
        ('"budget": Infinity', "budget"),
        ('"budget": 1e309', "budget"),
        ('"goal": {"target": Infinity}', "target"),
        ('"goal": {"target": NaN}', "target"),
        ('"max_cost_per_customer": -Infinity', "max_cost_per_customer"),
        ('"holdout": NaN', "holdout"),
        ('"max_offer_value": Infinity', "max_offer_value"),
        ('"channel_budgets": {"email": Infinity}', "channel_budgets"),
        ('"alert_fractions": [NaN]', "alert_fractions"),
        ('"alert_fractions": null', "alert_fractions"),
        ('"seed": 18446744073709551616', "seed"),
        ('"suppression": [9223372036854775808]', "suppression"),
        ('"n_customers": 2000000', "n_customers"),
        ('"name": "\\ud800"', "name"),
        ('"name": "a\\u0000b"', "name"),
        ('"allowed_arms": ["\\udfff"]', "allowed_arms"),
    ]
    for extra, field in creates:
        _field_422(_raw(client, "POST", "/campaigns", "{" + base + ", " + extra + "}", h), field)
    for extra, field in [
        ('"budget": Infinity', "budget"),
        ('"goal": {"target": 1e309}', "target"),
        ('"reason": "x\\u0000"', "reason"),
    ]:
        _field_422(_raw(client, "PATCH", f"/campaigns/{cid}", "{" + extra + "}", h), field)
    _field_422(_raw(client, "POST", f"/campaigns/{cid}/pause", '{"reason": "\\ud83d"}', h), "reason")
    ev = '{"events": [{"event_id": "%s", "decision_id": %s, "kind": "converted", %s}]}'
    for text, field in [
        (ev % ("e", "0", '"offer_cost": Infinity'), "offer_cost"),
        (ev % ("e", "0", '"offer_cost": NaN'), "offer_cost"),
        (ev % ("e", "0", '"revenue": Infinity'), "revenue"),
        (ev % ("e", "0", '"revenue": -Infinity'), "revenue"),
        (ev % ("e", "18446744073709551616", '"revenue": 1'), "decision_id"),
        (ev % ("e\\u0000", "0", '"revenue": 1'), "event_id"),
        (ev % ("\\udc00", "0", '"revenue": 1'), "event_id"),
    ]:
        _field_422(_raw(client, "POST", f"/campaigns/{cid}/events", text, h), field)
    _field_422(
        _raw(client, "POST", f"/campaigns/{cid}/decide", '{"customer": 9223372036854775808}', h), "customer"
    )
    _field_422(_raw(client, "POST", f"/campaigns/{cid}/decide", '{"customer": NaN}', h), "customer")
    for url, field in [
        ("/campaigns/9223372036854775808", "cid"),
        ("/campaigns/2147483648", "cid"),  # PostgreSQL INTEGER ids
        (f"/campaigns/{cid}/events?offset=9223372036854775808", "offset"),
        (f"/campaigns/{cid}/iterations?limit=99999999999999999999", "limit"),
        (f"/campaigns/{cid}/forecast?runs=11", "runs"),
    ]:
        _field_422(client.get(url, headers=h), field)
    assert client.get("/campaigns/2147483647", headers=h).status_code == 404
    assert client.get("/campaigns", headers=h).status_code == 200  # nothing bad was stored


def test_a_stored_non_finite_value_never_makes_a_500(
    client: TestClient, started: tuple[dict[str, str], int]
) -> None:
    h, cid = started
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    spec = client.get(f"/campaigns/{cid}", headers=h).json()["spec"]
    for target in (float("inf"), None):  # as an older server stored Infinity: as is, or as JSON null
        spec["goal"]["target"] = target
        with engine.begin() as conn:
            conn.execute(update(CampaignRow).where(CampaignRow.id == cid).values(spec_json=json.dumps(spec)))
        for url in ("/campaigns", f"/campaigns/{cid}"):
            r = client.get(url, headers=h)
            assert r.status_code == 200, r.text
        assert r.json()["goal"]["target"] is None


def test_policy_names_stay_inside_the_policies_folder(client: TestClient, tmp_path: Path) -> None:
    h = auth(client)
    # A "saved policy" outside the policies folder whose pickle would leave a mark if loaded.
    evil = tmp_path / "evil"
    make_policy("thompson", Simulator(load_scenario("retail"), n_customers=100), seed=0).save(evil)
    mark = tmp_path / "unpickled"

    class Mark:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (mark,))

    for f in evil.iterdir():
        if f.suffix in (".pkl", ".pickle"):
            f.write_bytes(pickle.dumps(Mark()))
    data = client.app.state.service.settings.data_dir  # type: ignore[attr-defined]
    (data / "policies").mkdir(parents=True, exist_ok=True)
    for name in [
        f"saved:{evil}",
        "saved:../../evil",
        "saved:..",
        "saved:.hidden",
        "saved:a/b",
        "ppo:model_path=/etc/passwd",
        "a2c:model_path=x.zip",
        "ppo:deterministic=true,model_path=/x",
    ]:
        _field_422(client.post("/campaigns", json={**SMALL, "policy": name}, headers=h), "policy")
    assert not mark.exists()
    # A saved policy inside the folder, by its plain name, loads.
    make_policy("thompson", Simulator(load_scenario("retail"), n_customers=100), seed=0).save(
        data / "policies" / "mine"
    )
    r = client.post("/campaigns", json={**SMALL, "policy": "saved:mine"}, headers=h)
    assert r.status_code == 201, r.text


def test_action_is_not_a_query_parameter(client: TestClient, started: tuple[dict[str, str], int]) -> None:
    h, cid = started
    r = client.post(f"/campaigns/{cid}/pause?_action=cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "paused"
    params = client.get("/openapi.json").json()["paths"]["/campaigns/{cid}/pause"]["post"]["parameters"]
    assert [p["name"] for p in params if p["in"] == "query"] == []


def test_events_answer_tells_the_truth_when_not_running(
    client: TestClient, started: tuple[dict[str, str], int]
) -> None:
    h, cid = started
    client.app.state.runner.run_pending()  # type: ignore[attr-defined]
    client.post(f"/campaigns/{cid}/cancel", headers=h)
    ev = [
        {"event_id": "c1", "decision_id": 0, "kind": "converted", "revenue": 5},
        {"event_id": "c2", "decision_id": 0, "kind": "converted", "revenue": 5},
    ]
    got = client.post(f"/campaigns/{cid}/events", json={"events": ev}, headers=h).json()
    stored = {e["event_id"]: e["status"] for e in client.get(f"/campaigns/{cid}/events", headers=h).json()}
    assert set(got["accepted"]) == {k for k, v in stored.items() if v == "applied"}
    assert set(got["rejected"]) == {k for k, v in stored.items() if v == "rejected"} and got["rejected"]


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    strict = dataclasses.replace(
        settings, rate_per_second=0.01, rate_burst=3, max_active_campaigns=1, heavy_wait_seconds=0.05
    )
    app = create_app(strict)
    with TestClient(app) as c:
        yield c
    app.state.service.engine.dispose()


def test_rate_limit_quota_and_busy_answer_429_or_503(limited: TestClient) -> None:
    client = limited
    h = auth(client)
    cid = client.post("/campaigns", json=SMALL, headers=h).json()["id"]
    r = client.post("/campaigns", json=SMALL, headers=h)  # over the quota of one active campaign
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "quota" in r.json()["detail"]
    svc = client.app.state.service  # type: ignore[attr-defined]
    with svc._heavy_work():  # every slot for expensive work taken
        r = client.get(f"/campaigns/{cid}/forecast?runs=1", headers=h)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    r = client.get("/campaigns", headers=h)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1  # the burst of 3 is used up
    assert client.get("/campaigns", headers=auth(client, "bob")).status_code == 200  # per owner


def test_metrics_need_the_metrics_token_when_one_is_set(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, metrics_token="m-token"))
    with TestClient(app) as client:
        h = auth(client)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=h).status_code == 401  # an owner's key is not enough
        assert client.get("/metrics", headers={"Authorization": "Bearer m-token"}).status_code == 200
    app.state.service.engine.dispose()


def test_a_revoked_key_stops_at_once(client: TestClient) -> None:
    h = auth(client)
    assert client.get("/campaigns", headers=h).status_code == 200
    svc = client.app.state.service  # type: ignore[attr-defined]
    (row,) = svc.list_keys()
    svc.revoke_key(row["id"])
    assert client.get("/campaigns", headers=h).status_code == 401


def test_webhook_urls_are_allow_listed_and_public_only(client: TestClient) -> None:
    h = auth(client)

    def create(url: str) -> Any:
        ch = {"type": "webhook", "url": url, "secret_ref": "receiver"}
        return client.post("/campaigns", json={**SMALL, "channel": ch}, headers=h)

    for url in [
        "http://example.com/hook",  # https only by default
        "https://127.0.0.1:9/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://user:pw@example.com/x",
    ]:
        r = create(url)
        _field_422(r, "url")
        assert "refused" not in r.text.lower()  # no connection is tried, nothing is echoed


def test_channel_failures_are_reported_without_the_connection_error(
    settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    opted_in = dataclasses.replace(
        settings, webhook_schemes=("http",), webhook_allow_private=True, webhook_secrets={"r": SECRET}
    )
    app = create_app(opted_in)
    with TestClient(app) as client:
        h = auth(client)
        ch = {"type": "webhook", "url": url, "secret_ref": "r"}
        cid = client.post("/campaigns", json={**SMALL, "channel": ch}, headers=h).json()["id"]
        client.post(f"/campaigns/{cid}/start", headers=h)
        rec.fail_next = [400]  # the receiver refuses the batch
        client.app.state.runner.run_pending()  # type: ignore[attr-defined]
        assert client.get(f"/campaigns/{cid}", headers=h).json()["status"] == "paused"
        alerts = client.get(f"/campaigns/{cid}/alerts", headers=h).json()
        audit = client.get(f"/campaigns/{cid}/audit", headers=h).json()
        report = client.get(f"/campaigns/{cid}/report", headers=h).json()
        assert alerts[-1]["message"] == CHANNEL_FAILED and audit[-1]["reason"] == CHANNEL_FAILED
        assert url not in json.dumps(report) and "HTTP 400" not in json.dumps(report)
    app.state.service.engine.dispose()


def test_a_forecast_too_large_to_simulate_is_refused(client: TestClient) -> None:
    h = auth(client)
    big = {**SMALL, "max_iterations": 1000, "customers_per_iteration": 4000}  # 4,000,000 candidates a run
    cid = client.post("/campaigns", json=big, headers=h).json()["id"]
    r = client.get(f"/campaigns/{cid}/forecast?runs=1", headers=h)
    _field_422(r, "runs")
    assert "at most 0 runs" in r.json()["detail"][0]["msg"]
