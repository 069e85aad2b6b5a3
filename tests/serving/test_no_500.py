# ruff: noqa: E501  (the strategy tables read best one field per line)
"""No user input produces a 500: random bodies for create, modify, events and decide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.app import create_app
from serving.settings import Settings
from tests.serving.conftest import auth

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(), st.integers(2**62, 2**70), st.text(max_size=12),
    st.lists(st.integers(-5, 10**6), max_size=4), st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)  # fmt: skip
fields = {
    "name": st.one_of(st.text(max_size=5), junk),
    "scenario": st.sampled_from(["retail", "winback", "hillstrom", "mars", ""]),
    "policy": st.sampled_from(["random", "thompson", "oracle", "fixed:email/bestsellers/none", "nope", "saved:x", "models:/"]),
    "n_customers": st.one_of(st.integers(50, 3000), junk),
    "goal": st.one_of(st.fixed_dictionaries({"target": st.floats(-5, 500)}), st.fixed_dictionaries({"metric": st.sampled_from(["revenue", "incremental_conversions", "x"]), "target": st.floats(1, 500)}), junk),
    "budget": st.one_of(st.floats(-10, 1e4), junk),
    "max_iterations": st.one_of(st.integers(-1, 3), junk),
    "customers_per_iteration": st.one_of(st.integers(-1, 500), junk),
    "allowed_arms": st.one_of(st.lists(st.sampled_from(["email/bestsellers/none", "sms/x/none", ""]), max_size=2), junk),
    "channel_budgets": st.one_of(st.dictionaries(st.sampled_from(["email", "sms", "fax"]), st.floats(-1, 50), max_size=2), junk),
    "suppression": st.one_of(st.lists(st.integers(-3, 5000), max_size=3), junk),
    "holdout": st.one_of(st.floats(-1, 1), junk),
    "frequency_cap": st.one_of(st.fixed_dictionaries({"max_contacts": st.integers(-1, 3), "window_iterations": st.integers(0, 3)}), junk),
    "channel": st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["simulated", "webhook", "file", "x"])}), junk),
    "max_offer_value": st.one_of(st.floats(-1, 20), junk),
}  # fmt: skip
bodies = st.fixed_dictionaries({}, optional=fields)  # type: ignore[arg-type]


def test_random_requests_never_500(tmp_path: Path) -> None:
    settings_ = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path / "d", run_worker=False
    )
    with TestClient(create_app(settings_), raise_server_exceptions=False) as client:
        h = auth(client)
        ok = client.post(
            "/campaigns",
            json={"name": "base", "n_customers": 500, "customers_per_iteration": 100, "budget": 20},
            headers=h,
        )
        cid = ok.json()["id"]
        client.post(f"/campaigns/{cid}/start", headers=h)

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=bodies, patch=bodies, event=junk, customer=junk)
        def check(body: dict[str, Any], patch: dict[str, Any], event: Any, customer: Any) -> None:
            def send(method: str, url: str, doc: Any) -> Any:  # NaN and Infinity as JSON tokens
                headers = {**h, "Content-Type": "application/json"}
                return client.request(method, url, content=json.dumps(doc).encode(), headers=headers)

            body = {"n_customers": 500, **body}
            r = send("POST", "/campaigns", body)
            assert r.status_code in (201, 422, 429), (body, r.status_code, r.text)
            patch = {k: v for k, v in patch.items() if k in ("budget", "goal", "max_iterations", "allowed_arms", "channel_budgets", "frequency_cap")}  # fmt: skip
            r = send("PATCH", f"/campaigns/{cid}", patch)
            assert r.status_code in (200, 409, 422), (patch, r.status_code, r.text)
            r = send("POST", f"/campaigns/{cid}/events", {"events": [event]})
            assert r.status_code in (200, 422), (event, r.status_code, r.text)
            r = send("POST", f"/campaigns/{cid}/decide", {"customer": customer})
            assert r.status_code in (200, 409, 422), (customer, r.status_code, r.text)

        check()
