"""Versioned snapshots: a campaign restored from plain data continues bit for bit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent import Campaign, CampaignError, CampaignSpec, FrequencyCap, WebhookChannel
from agent.snapshot import SNAPSHOT_VERSION, migrate
from policies import make_policy
from simulators import Simulator, load_scenario

DATA = Path(__file__).parent / "data"
V1_FILE = DATA / "snapshot_v1.json"
"""Written by version 1: ``_campaign("fixed:email/bestsellers/pct10", n=300, seed=7)``, started,
three ticks, then ``json.dumps(camp.snapshot())``. Never rewrite it: it stands for a campaign
stored before an upgrade."""


def _campaign(policy: str, n: int = 4000, seed: int = 1) -> Campaign:
    sc = load_scenario("retail")
    sim = Simulator(sc, n_customers=n)
    spec = CampaignSpec.from_scenario(
        sc,
        goal_target=n / 30,
        budget=n / 6,
        customers_per_iteration=n // 6,
        max_cost_per_customer=15,
        holdout=0.05,
        frequency_cap=FrequencyCap(max_contacts=3, window_iterations=5),
    )
    return Campaign(spec, sim, make_policy(policy, sim, seed=seed), seed=seed)


def _finish(camp: Campaign) -> dict[str, Any]:
    while camp.tick() is not None:
        pass
    out: dict[str, Any] = _timeless(camp.report().to_dict())
    return out


def _timeless(x: Any) -> Any:
    """The report without wall-clock times (audit records and alerts carry them)."""
    if isinstance(x, dict):
        return {k: _timeless(v) for k, v in x.items() if k != "time"}
    if isinstance(x, list):
        return [_timeless(v) for v in x]
    return x


@pytest.mark.parametrize("policy", ["oracle", "budgeted_ts"])
def test_a_restored_campaign_ends_exactly_as_an_uninterrupted_one(policy: str) -> None:
    whole = _campaign(policy)
    whole.start()
    expected = _finish(whole)

    camp = _campaign(policy)
    camp.start()
    for _ in range(4):
        camp.tick()
    doc = json.loads(json.dumps(camp.snapshot()))  # plain JSON, nothing pickled
    assert doc["snapshot_version"] == SNAPSHOT_VERSION
    restored = Campaign.from_snapshot(doc)
    assert restored.iterations == 4 and restored.ledger.spent == camp.ledger.spent
    assert _finish(restored) == expected


def test_a_snapshot_holds_no_channel_and_no_secret() -> None:
    sc = load_scenario("retail")
    sim = Simulator(sc, n_customers=500)
    secret = "s3cr3t-webhook-key"
    channel = WebhookChannel("https://example.invalid/hook", secret, sim.arms)
    spec = CampaignSpec.from_scenario(sc, goal_target=10, budget=50, customers_per_iteration=100)
    camp = Campaign(spec, sim, make_policy("random", sim, seed=0), seed=0, channel=channel)
    text = json.dumps(camp.snapshot())
    assert secret not in text and "example.invalid" not in text
    rebuilt = Campaign.from_snapshot(
        json.loads(text), channel=lambda s: WebhookChannel("https://example.invalid/x", "key", s.arms)
    )
    assert rebuilt.channel.name == "webhook" and rebuilt.sim is not sim


def test_a_snapshot_written_by_version_1_still_loads_and_runs() -> None:
    doc = json.loads(V1_FILE.read_text(encoding="utf-8"))
    assert doc["snapshot_version"] == 1
    camp = Campaign.from_snapshot(doc)
    assert camp.status == "running" and camp.iterations == 3 and len(camp.history) == 3
    rep = _finish(camp)
    assert rep["iterations"] > 3 and rep["spend"] <= rep["budget"]
    assert camp.ledger.reserved == 0 and np.all(camp.customer_cost >= -1e-9)


def test_migrate_refuses_unknown_versions_and_foreign_policies() -> None:
    doc = json.loads(V1_FILE.read_text(encoding="utf-8"))
    assert migrate(doc) == doc
    for version in (None, 0, SNAPSHOT_VERSION + 1):
        with pytest.raises(CampaignError, match="snapshot_version"):
            migrate({**doc, "snapshot_version": version})
    foreign = {**doc, "policy": {**doc["policy"], "class": "os:system"}}
    with pytest.raises(CampaignError, match="outside the policies package"):
        Campaign.from_snapshot(foreign)


def test_a_campaign_without_a_seed_continues_like_its_snapshot() -> None:
    camp = _campaign("thompson", n=1000)
    camp = Campaign(camp.spec, camp.sim, make_policy("thompson", camp.sim, seed=3), seed=None)
    camp.start()
    for _ in range(2):
        camp.tick()
    copy = Campaign.from_snapshot(json.loads(json.dumps(camp.snapshot())))
    assert copy.sim_seed == camp.sim_seed
    assert _finish(copy) == _finish(camp)
