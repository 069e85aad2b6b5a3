"""``/campaigns/{id}/reports/ab`` and ``/reports/rounds`` on SQLite and PostgreSQL: owner-scoped,
JSON numbers that agree with the campaign's own report, 404 / 409 / 422, never a 500."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.serving.conftest import SMALL, auth, run_all


def _create(client: TestClient, h: dict[str, str], **over: Any) -> int:
    r = client.post("/campaigns", json={**SMALL, **over}, headers=h)
    assert r.status_code == 201, r.text
    cid: int = r.json()["id"]
    return cid


def _ran(client: TestClient, h: dict[str, str], **over: Any) -> int:
    cid = _create(client, h, **over)
    assert client.post(f"/campaigns/{cid}/start", headers=h).status_code == 200
    run_all(client)
    return cid


def test_ab_report_of_a_campaign(client: TestClient) -> None:
    h = auth(client)
    cid = _ran(client, h, policy="random")
    r = client.get(f"/campaigns/{cid}/reports/ab", params={"by": "arm"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["campaign_id"] == cid and body["by"] == "arm" and body["kind"] == "ab"
    groups = body["groups"]
    assert body["control"] == groups[0]["name"]
    # The decisions are the campaign's sends (the log holds contacts), its cost the ledger's spend.
    rep = client.get(f"/campaigns/{cid}/report", headers=h).json()
    n = sum(g["n"] for g in groups)
    assert n == rep["sends"] > 0
    assert abs(sum(g["cost"] for g in groups) - rep["spend"]) < 1e-6
    assert sum(g["conversions"] for g in groups) <= rep["conversions"]
    comps = body["comparisons"]
    metrics = {"conversion_rate", "revenue_per_customer", "net_value_per_customer"}
    assert {c["metric"] for c in comps} == metrics
    for c in comps:
        assert 0.0 <= c["p_value"] <= c["p_holm"] <= 1.0
        assert c["p_value"] <= c["p_bh"] <= c["p_holm"] + 1e-12
        if c["low"] is not None and c["high"] is not None:
            assert c["low"] <= c["difference"] <= c["high"]
    by_channel = client.get(f"/campaigns/{cid}/reports/ab", params={"by": "channel"}, headers=h).json()
    assert sum(g["n"] for g in by_channel["groups"]) == n
    by_policy = client.get(f"/campaigns/{cid}/reports/ab", params={"by": "policy"}, headers=h).json()
    assert [g["name"] for g in by_policy["groups"]] == ["random"] and by_policy["comparisons"] == []
    png = client.get(f"/campaigns/{cid}/reports/ab.png", headers=h)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_ab_report_counts_realtime_decisions_and_their_conversions(client: TestClient) -> None:
    h = auth(client)
    cid = _create(client, h, budget=60)
    client.post(f"/campaigns/{cid}/start", headers=h)
    made = []
    for customer in range(30):
        r = client.post(f"/campaigns/{cid}/decide", json={"customer": customer}, headers=h)
        if r.status_code == 200 and r.json()["decision_id"] is not None:
            made.append(r.json())
    assert made
    ev = {
        "events": [
            {"event_id": "c1", "decision_id": made[0]["decision_id"], "kind": "converted", "revenue": 30}
        ]
    }
    assert client.post(f"/campaigns/{cid}/events", json=ev, headers=h).status_code == 200
    body = client.get(f"/campaigns/{cid}/reports/ab", headers=h).json()
    assert sum(g["n"] for g in body["groups"]) >= len(made)
    assert sum(g["revenue"] for g in body["groups"]) >= 30.0 - 1e-9


def test_rounds_report_compares_two_campaigns_of_the_owner(client: TestClient) -> None:
    h = auth(client)
    first = _ran(client, h, policy="random")
    second = _ran(client, h, policy="thompson")
    r = client.get(f"/campaigns/{second}/reports/rounds", params={"previous": first}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["previous"] == first and body["campaign_id"] == second
    ab_first = client.get(f"/campaigns/{first}/reports/ab", headers=h).json()
    assert body["before"]["n"] == sum(g["n"] for g in ab_first["groups"])
    deltas = {d["metric"]: d for d in body["deltas"]}
    assert deltas["conversions"]["difference"] == body["after"]["conversions"] - body["before"]["conversions"]
    assert deltas["conversion_rate"]["low"] <= deltas["conversion_rate"]["difference"]
    assert deltas["conversion_rate"]["difference"] <= deltas["conversion_rate"]["high"]
    assert {"spend", "cost_per_conversion", "revenue_per_customer"} <= set(deltas)
    png = client.get(f"/campaigns/{second}/reports/rounds.png", params={"previous": first}, headers=h)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_reports_are_owner_scoped_and_refuse_bad_input(client: TestClient) -> None:
    alice, bob = auth(client, "alice"), auth(client, "bob")
    done = _ran(client, alice, policy="random")
    fresh = _create(client, alice)
    bobs = _ran(client, bob, policy="random")
    url = f"/campaigns/{done}/reports"
    assert client.get(f"{url}/ab", headers=bob).status_code == 404
    assert client.get("/campaigns/999999/reports/ab", headers=alice).status_code == 404
    assert client.get(f"{url}/ab").status_code == 401
    assert client.get(f"{url}/rounds", params={"previous": bobs}, headers=alice).status_code == 404
    assert client.get(f"{url}/rounds", params={"previous": done}, headers=alice).status_code == 422
    assert client.get(f"{url}/rounds", headers=alice).status_code == 422
    assert client.get(f"{url}/ab", params={"by": "colour"}, headers=alice).status_code == 422
    assert client.get(f"{url}/ab", params={"alpha": 0}, headers=alice).status_code == 422
    assert client.get(f"{url}/ab", params={"margin": 2}, headers=alice).status_code == 422
    bad = client.get(f"{url}/ab", params={"control": "nobody"}, headers=alice)
    assert bad.status_code == 422 and "nobody" in bad.text
    assert client.get(f"/campaigns/{fresh}/reports/ab", headers=alice).status_code == 409
    assert client.get(f"{url}/rounds", params={"previous": fresh}, headers=alice).status_code == 409


def test_an_unreadable_snapshot_is_a_409_not_a_500(client: TestClient) -> None:
    from sqlalchemy import update

    from serving.models import CampaignState

    h = auth(client)
    cid = _ran(client, h, policy="random")
    other = _ran(client, h, policy="random")
    svc = client.app.state.service  # type: ignore[attr-defined]
    with svc.engine.begin() as conn:
        stmt = update(CampaignState).where(CampaignState.campaign_id == cid).values(snapshot=b"\x00garbage")
        conn.execute(stmt)
    assert client.get(f"/campaigns/{cid}/reports/ab", headers=h).status_code == 409
    assert (
        client.get(f"/campaigns/{other}/reports/rounds", params={"previous": cid}, headers=h).status_code
        == 409
    )
