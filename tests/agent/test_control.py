"""Manual intervention: pause/resume/cancel/modify, the audit log, alerts, and pickled campaigns."""

from __future__ import annotations

import pickle
from dataclasses import asdict

import pytest

from agent import Alert, Campaign, CampaignError, CampaignSpec, CampaignUpdate, Goal
from policies import make_policy
from simulators import Simulator, load_scenario


def _campaign(policy: str = "thompson", seed: int = 0, **spec_kw: object) -> Campaign:
    sim = Simulator(load_scenario("retail"), n_customers=3000)
    kw: dict[str, object] = {
        "goal": Goal(target=120),
        "budget": 150.0,
        "customers_per_iteration": 1000,
        "max_iterations": 10,
    }
    kw.update(spec_kw)
    return Campaign(CampaignSpec(**kw), sim, make_policy(policy, sim, seed=seed), seed=seed)  # type: ignore[arg-type]


def _outcome(camp: Campaign) -> dict[str, object]:
    d = camp.report().to_dict()
    for key in ("audit_log", "alerts"):
        d.pop(key)
    return d


@pytest.mark.parametrize("policy", ["thompson", "budgeted_ts"])
def test_pause_then_resume_equals_an_uninterrupted_run(policy: str) -> None:
    plain = _campaign(policy)
    plain.run()
    camp = _campaign(policy)

    def pause_at_3(rec: object) -> None:
        if camp.iterations == 3:
            camp.pause("owner review")

    first = camp.run(on_iteration=pause_at_3)
    assert first.status == "paused" and camp.iterations == 3
    with pytest.raises(CampaignError, match="paused; resume it first"):
        camp.run()
    camp.resume("looks fine")
    camp.run()
    assert _outcome(camp) == _outcome(plain)
    assert [a.action for a in camp.audit_log] == ["pause", "resume"]
    assert camp.audit_log[0].reason == "owner review" and camp.audit_log[0].iteration == 3


def test_a_pickled_campaign_continues_bit_identically() -> None:
    plain = _campaign()
    plain.run()
    camp = _campaign()
    camp.on_alert(lambda a: None)  # callbacks are not state: dropped by pickling
    for _ in range(4):
        camp.step()
    restored = pickle.loads(pickle.dumps(camp))
    restored.run()
    assert _outcome(restored) == _outcome(plain)


def test_wrong_transitions_are_refused_with_the_reason() -> None:
    camp = _campaign()
    with pytest.raises(CampaignError, match="cannot resume a campaign that is ready"):
        camp.resume("x")
    camp.cancel("changed plans")
    assert camp.status == "cancelled" and camp.ledger.reserved == 0
    for act in (camp.pause, camp.resume, camp.cancel):
        with pytest.raises(CampaignError, match="cancelled"):
            act("x")
    with pytest.raises(CampaignError, match="cancelled"):
        camp.run()
    with pytest.raises(CampaignError, match="cannot modify"):
        camp.modify(CampaignUpdate(budget=10), "x")
    assert camp.report().stop_reason == "cancelled"


def test_modify_applies_all_or_nothing() -> None:
    camp = _campaign("random", budget=100.0)
    for _ in range(3):
        camp.step()
    committed = camp.ledger.spent + camp.ledger.reserved
    assert committed > 0
    before = camp.spec
    with pytest.raises(CampaignError, match="below what is already spent"):
        camp.modify(CampaignUpdate(budget=committed / 2, goal=Goal(target=5)), "cut")
    with pytest.raises(CampaignError, match="allowed_arms"):
        camp.modify(CampaignUpdate(allowed_arms=["fax/x/none"], budget=500), "x")
    with pytest.raises(CampaignError, match="unknown channel"):
        camp.modify(CampaignUpdate(channel_budgets={"fax": 1.0}), "x")
    with pytest.raises(CampaignError, match="nothing to change"):
        camp.modify(CampaignUpdate(), "x")
    assert camp.spec == before and camp.ledger.budget == 100.0 and camp.audit_log == []
    camp.modify(
        CampaignUpdate(budget=300.0, allowed_arms=["email/bestsellers/none"]), "more money, e-mail only"
    )
    assert camp.ledger.budget == 300.0 and camp.spec.allowed_arms == ["email/bestsellers/none"]
    n = len(camp.log)
    camp.step()
    new_arms = set(camp.log.arm[n:].tolist())
    assert new_arms <= {camp.sim.arms.index("email/bestsellers/none")}
    (rec,) = camp.audit_log
    assert rec.action == "modify" and rec.changes["budget"] == 300.0 and rec.reason.startswith("more money")


def test_budget_alerts_and_goal_alert_fire_once_each() -> None:
    got: list[Alert] = []
    camp = _campaign("random", budget=40.0, goal=Goal(target=1), alert_fractions=(0.01, 0.02, 0.5))
    camp.on_alert(got.append)
    rep = camp.run()
    kinds = [(a.kind, a.value) for a in got]
    last = rep.history[-1].spend_total / 40.0  # alerts are checked after every iteration
    fired = {v for k, v in kinds if k == "budget"}
    assert fired == {f for f in (0.01, 0.02, 0.5) if f <= last} and fired, (last, kinds)
    assert [k for k, _ in kinds].count("goal_reached") == (1 if rep.goal_reached else 0)
    assert len(set(kinds)) == len(kinds)
    assert rep.alerts == camp.alerts and all("time" in asdict(a) for a in rep.alerts)


def test_start_tick_and_realtime_decide() -> None:
    import numpy as np

    from agent import Campaign, CampaignError, CampaignSpec, Goal
    from policies import make_policy
    from simulators import Simulator, load_scenario

    sim = Simulator(load_scenario("retail"), n_customers=2000)
    spec = CampaignSpec(
        goal=Goal(target=10_000),
        budget=50,
        max_iterations=2,
        customers_per_iteration=500,
        suppression=frozenset(range(100)),
        holdout=0.1,
    )
    camp = Campaign(spec, sim, make_policy("random", sim, seed=0), seed=0)
    with pytest.raises(CampaignError, match="not running"):
        camp.tick()
    camp.start("owner launched it")
    assert camp.audit_log[-1].action == "start"
    arms, pscores = camp.decide(np.arange(2000))
    assert arms.shape == pscores.shape == (2000,)
    assert (arms[:100] == 0).all() and (arms[camp.holdout] == 0).all()  # suppressed and held out
    assert (arms != 0).any()
    with pytest.raises(CampaignError, match="customer ids"):
        camp.decide(np.array([5000]))
    assert camp.tick() is not None and camp.tick() is not None
    assert camp.tick() is None and camp.status == "completed" and camp.stop_reason == "max_iterations"
