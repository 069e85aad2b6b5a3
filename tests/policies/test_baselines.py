"""Baseline policies: propensities, masks, the oracle's choices, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policies import (
    DecisionContext,
    FixedPolicy,
    OraclePolicy,
    RandomPolicy,
    UnknownPolicyError,
    load_policy,
    make_policy,
)
from simulators import Simulator, load_scenario


@pytest.fixture(scope="module")
def sim() -> Simulator:
    s = Simulator(load_scenario("retail"), n_customers=3000)
    s.reset(seed=0)
    return s


def _ctx(sim: Simulator, n: int = 3000, budget: float = 1e9, remaining: float = 50.0) -> DecisionContext:
    c = np.arange(n)
    return DecisionContext(
        customers=c,
        features=sim.features(c),
        mask=sim.arm_mask(c),
        arms=sim.arms,
        iteration=0,
        iterations_left=5,
        budget_available=budget,
        goal_metric="conversions",
        goal_remaining=remaining,
    )


def test_random_propensities_match_frequencies(sim: Simulator) -> None:
    ctx = _ctx(sim, n=1)
    ctx = DecisionContext(
        **{
            **ctx.__dict__,
            "customers": np.zeros(20000, np.int64),
            "mask": np.repeat(ctx.mask, 20000, 0),
            "features": np.repeat(ctx.features, 20000, 0),
        }
    )
    dec = RandomPolicy(seed=0).act(ctx)
    allowed = int(ctx.mask[0].sum())
    assert np.allclose(dec.pscores, 1 / allowed)
    freq = np.bincount(dec.arms, minlength=len(sim.arms))[ctx.mask[0]] / 20000
    assert np.abs(freq - 1 / allowed).max() < 5 * np.sqrt((1 / allowed) / 20000)
    assert ctx.mask[np.arange(20000), dec.arms].all()


def test_fixed_respects_mask(sim: Simulator) -> None:
    ctx = _ctx(sim)
    arm = sim.arms.index("push/bestsellers/none")
    dec = FixedPolicy("push/bestsellers/none").act(ctx)
    assert set(np.unique(dec.arms)) <= {0, arm}
    assert np.array_equal(dec.arms == arm, ctx.mask[:, arm])


def test_oracle_prefers_value_per_cost(sim: Simulator) -> None:
    ctx = _ctx(sim, remaining=5.0)
    dec = OraclePolicy(sim).act(ctx)
    gt = sim.expected(ctx.customers, dec.arms)
    sent = dec.arms != 0
    assert gt.p_convert[sent].sum() >= 5.0 * 1.1 / 5 - 1e-9  # meets the paced need
    # With a small need it buys the cheapest conversions: mostly e-mail and push, no letters.
    assert (sim.arms.channel[dec.arms[sent]] != sim.arms.channel_names.index("mail")).all()
    more = OraclePolicy(sim).act(_ctx(sim, remaining=200.0))
    assert sim.expected(ctx.customers, more.arms).p_convert.sum() > gt.p_convert[sent].sum()


def test_oracle_fits_budget_on_worst_case(sim: Simulator) -> None:
    dec = OraclePolicy(sim).act(_ctx(sim, budget=3.0, remaining=1e6))
    assert sim.arms.worst_case_cost[dec.arms].sum() <= 3.0


@pytest.mark.parametrize("name", ["random", "fixed:email/bestsellers/none", "fixed:3", "oracle"])
def test_save_load_round_trip(sim: Simulator, name: str, tmp_path: Path) -> None:
    ctx = _ctx(sim, n=500)
    pol = make_policy(name, sim, seed=5)
    pol.act(ctx)  # advance the random state before saving
    pol.save(tmp_path)
    again = load_policy(tmp_path, sim)
    a, b = pol.act(ctx), again.act(ctx)
    assert np.array_equal(a.arms, b.arms) and np.array_equal(a.pscores, b.pscores)


def test_unknown_names(sim: Simulator) -> None:
    with pytest.raises(UnknownPolicyError, match="known"):
        make_policy("nope", sim)
    with pytest.raises(UnknownPolicyError, match="unknown arm"):
        make_policy("fixed:carrier-pigeon", sim)
