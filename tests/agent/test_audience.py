"""A campaign on an owner's audience and catalogue, on a schedule: no simulator anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from agent import Campaign, CampaignSpec, Goal
from agent.audience import AudienceError, AudienceWorld
from agent.catalogue import Catalogue
from agent.channels import FileChannel
from agent.control import EventIn
from agent.schedule import HOUR, ManualClock, Schedule, VirtualClock
from policies import make_policy
from simulators import Simulator, load_scenario

START = datetime(2026, 12, 1, 9, tzinfo=UTC)
CATALOGUE = {
    "channels": [{"name": "email", "send_cost": 0.01}, {"name": "sms", "send_cost": 0.05}],
    "contents": [{"name": "news"}, {"name": "promo", "channels": ["sms"]}],
    "offers": [{"name": "ten", "discount": 0.1, "cap": 5.0}],
}


def world(n: int = 3000, seed: int = 0) -> AudienceWorld:
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:05d}" for i in range(n)])
    cols = {
        "recency": rng.integers(1, 13, n).astype(float),
        "channel": rng.choice(["Web", "Phone", "Multi"], n),
    }
    consent = {"email": rng.random(n) < 0.9, "sms": rng.random(n) < 0.5}
    return AudienceWorld.build(
        ids,
        cols,
        {"recency": "numeric", "channel": "categorical"},
        consent,
        Catalogue.model_validate(CATALOGUE),
        segment_by="channel",
    )


def test_the_catalogue_builds_arms_and_names_its_mistakes() -> None:
    cat = Catalogue.model_validate(CATALOGUE)
    names = cat.arm_table().names
    assert names[0] == "no_contact"
    assert "email/promo/none" not in names  # promo goes on sms only
    assert {"email/news/none", "email/news/ten", "sms/promo/ten"} <= set(names)
    assert cat.arm_table().max_offer_cost[names.index("sms/promo/ten")] == 5.0
    bad = [
        ({**CATALOGUE, "channels": [{"name": "email", "send_cost": -1}]}, "send_cost"),
        ({**CATALOGUE, "offers": [{"name": "x", "discount": 0.2}]}, "cap"),
        ({**CATALOGUE, "contents": [{"name": "a", "channels": ["fax"]}]}, "fax"),
        ({**CATALOGUE, "channels": [{"name": "e/mail", "send_cost": 1}]}, "name"),
    ]
    for doc, word in bad:
        with pytest.raises(ValidationError, match=word):
            Catalogue.model_validate(doc)


def test_reachability_opt_outs_and_unsubscribes_shape_the_arm_mask() -> None:
    w = world(200)
    arms = w.arms
    c = np.arange(200)
    sms = arms.channel == arms.channel_names.index("sms")
    mask = w.arm_mask(c)
    assert mask[:, 0].all()
    assert (mask[:, sms].all(axis=1) == w.reachable[:, 1]).all()
    w.set_opt_outs({"sms": np.ones(200, bool)})
    assert not w.arm_mask(c)[:, sms].any()
    w.unsubscribe(np.array([0]), np.array([0]))
    email = arms.channel == 0
    assert not w.arm_mask(np.array([0]))[0, email].any()
    with pytest.raises(AudienceError, match="consent"):
        AudienceWorld.build(
            np.array(["a"]), {}, {}, {"email": np.array([True])}, Catalogue.model_validate(CATALOGUE)
        )


def _campaign(tmp: Path, n: int = 3000, target: float = 60) -> Campaign:
    w = world(n)
    sched = Schedule(start=START, every_hours=24, attribution_window_hours=48)
    spec = CampaignSpec(
        goal=Goal(target=target), budget=400, customers_per_iteration=600, max_iterations=12, schedule=sched
    )
    return Campaign(
        spec,
        w,
        make_policy("funnel_ts", w, seed=0),
        seed=0,
        channel=FileChannel(tmp, w.arms),
        campaign_id="c1",
    )


def _answer(camp: Campaign, now: float, rng: np.random.Generator, after_hours: float) -> list[str]:
    """Convert 5% of the last batch, by the owner's customer id, ``after_hours`` later."""
    chan = camp.channel
    assert isinstance(chan, FileChannel)
    recs = [json.loads(line) for line in chan.written[-1].read_text().splitlines()]
    conv = [r for r in recs if rng.random() < 0.05]
    events = [
        EventIn(
            event_id=f"e{r['decision_id']}",
            customer_id=r["customer"],
            kind="converted",
            revenue=40.0,
            offer_cost=2.0 if r["offer"] != "none" else 0.0,
        )
        for r in conv
    ]
    res = camp.ingest_events(events, received_at=[now + after_hours * HOUR] * len(events))
    assert not res.rejected, res.rejected
    return res.accepted


def test_an_audience_campaign_runs_on_the_clock_with_owner_ids(tmp_path: Path) -> None:
    camp = _campaign(tmp_path)
    assert camp.window == 2  # 48 h over a 24 h cadence
    clock = ManualClock(START.timestamp() - 5 * HOUR)
    camp.start("go", now=clock.now())
    assert camp.next_due == START.timestamp()  # not before the schedule's start
    assert not camp.due(clock.now())
    rng = np.random.default_rng(1)
    waves = 0
    while camp.status == "running":
        assert camp.next_due is not None
        clock.set(camp.next_due)
        rec = camp.tick(clock.now())
        if rec is None:
            break
        if rec.sends:
            waves += 1
            batch = [json.loads(x) for x in camp.channel.written[-1].read_text().splitlines()]  # type: ignore[attr-defined]
            assert all(r["customer"].startswith("C") for r in batch)  # the owner's ids go out
            _answer(camp, clock.now(), rng, after_hours=47.9)  # inside the 48 h window: never late
    rep = camp.report()
    assert rep.goal_reached and rep.spend <= 400
    gaps = np.diff(camp.times)
    assert np.allclose(gaps, 24 * HOUR)  # every iteration (sends, holds, drain) a day apart
    assert camp.ledger.reserved == 0 and camp._windows_open() is False
    assert waves >= 2
    seg = rep.results_by_segment
    assert set(seg) == {"Web", "Phone", "Multi"} and sum(v["customers"] for v in seg.values()) == 3000
    assert sum(v["conversions"] for v in seg.values()) == rep.conversions
    assert sum(v["sends"] for v in seg.values()) == rep.sends
    assert abs(sum(v["spend"] for v in seg.values()) - rep.spend) < 1e-3


def test_a_conversion_after_the_wall_window_is_late_and_one_inside_is_not(tmp_path: Path) -> None:
    camp = _campaign(tmp_path)
    camp.start("go", now=START.timestamp())
    now = START.timestamp()
    camp.tick(now)
    d0 = int(camp.log.decision_id[0])
    cust = str(camp.sim.customer_ids[camp.log.customer[0]])  # type: ignore[attr-defined]
    late = EventIn(event_id="late", decision_id=d0, kind="converted")
    res = camp.ingest_events([late], received_at=[now + 48.01 * HOUR])
    assert "attribution window" in res.rejected["late"]
    ok = EventIn(event_id="ok", customer_id=cust, kind="converted")
    assert camp.ingest_events([ok], received_at=[now + 47.99 * HOUR]).accepted == ["ok"]
    unknown = EventIn(event_id="who", customer_id="nobody", kind="opened")
    assert "not in the campaign's audience" in camp.ingest_events([unknown]).rejected["who"]


def test_schedule_end_stops_sending_and_the_snapshot_keeps_the_clock(tmp_path: Path) -> None:
    w = world(1000)
    sched = Schedule(
        start=START, every_hours=12, end=datetime(2026, 12, 2, 9, tzinfo=UTC), attribution_window_hours=24
    )
    spec = CampaignSpec(goal=Goal(target=10_000), budget=1000, customers_per_iteration=200, schedule=sched)
    camp = Campaign(spec, w, make_policy("random", w, seed=0), seed=0, channel=FileChannel(tmp_path, w.arms))
    camp.start("go", now=START.timestamp())
    camp.tick(camp.next_due)
    doc = json.loads(json.dumps(camp.snapshot()))
    back = Campaign.from_snapshot(doc, channel=FileChannel(tmp_path, w.arms))
    assert back.next_due == camp.next_due and back.times == camp.times
    assert isinstance(back.sim, AudienceWorld) and (back.sim.customer_ids == w.customer_ids).all()
    back.run(clock=VirtualClock(back.next_due or 0.0))
    assert back.stop_reason == "schedule_ended"
    assert max(t for t, r in zip(back.times, back.history, strict=True) if r.sends) < sched.end.timestamp()  # type: ignore[union-attr]


def test_a_simulated_campaign_on_a_virtual_clock_matches_the_unscheduled_one() -> None:
    """The schedule's code path changes when waves run, not what they do."""
    sc = load_scenario("retail")
    reports = []
    for sched in (None, Schedule(start=START, every_hours=24, attribution_window_hours=24 * 5)):
        sim = Simulator(sc, n_customers=4000)
        spec = CampaignSpec(
            goal=Goal(target=60),
            budget=300,
            customers_per_iteration=800,
            max_iterations=8,
            attribution_window=None if sched else 5,
            schedule=sched,
        )
        reports.append(Campaign(spec, sim, make_policy("random", sim, seed=0), seed=0).run())
    a, b = reports
    assert (a.conversions, round(a.spend, 6), a.sends) == (b.conversions, round(b.spend, 6), b.sends)
