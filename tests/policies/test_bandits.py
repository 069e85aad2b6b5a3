"""Learning policies: they learn a known optimum, their propensities are probabilities that match
their choices, they save and load, respect masks and budgets, and run whole campaigns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent import Campaign, CampaignSpec, Goal
from policies import (
    POLICY_NAMES,
    BudgetedTSPolicy,
    DecisionContext,
    Decisions,
    EpsilonGreedyPolicy,
    ExploreThenCommitPolicy,
    LinTSPolicy,
    LinUCBPolicy,
    Policy,
    ThompsonPolicy,
    UCBPolicy,
    UnknownPolicyError,
    load_policy,
    make_policy,
)
from simulators import Simulator, load_scenario
from tests.policies.synthetic import World, make_arms, run

CONTEXT_FREE = {
    "epsilon_greedy": lambda: EpsilonGreedyPolicy(epsilon=0.1, seed=1),
    "ucb": lambda: UCBPolicy(seed=1),
    "thompson": lambda: ThompsonPolicy(seed=1),
}
# Priors sized for the synthetic world's small rounds (the defaults suit waves of thousands).
SMALL = {"ridge": 1.0, "arm_ridge": 10.0, "prior_rate": 0.1, "history": False}
CONTEXTUAL = {
    "lin_ucb": lambda: LinUCBPolicy(alpha=1.0, seed=1, **SMALL),
    "lin_ts": lambda: LinTSPolicy(pscore_samples=16, seed=1, **SMALL),
    "budgeted_ts": lambda: BudgetedTSPolicy(pscore_samples=16, count_pending=False, seed=1, **SMALL),
}


def _flat_world(seed: int = 0) -> World:
    # Four arms of equal cost; arm 3 converts best.
    return World(make_arms([0.01] * 4), rate=np.array([0.0, 0.05, 0.10, 0.30, 0.15]), seed=seed)


def _context_world(seed: int = 0) -> World:
    # Arm 1 is best when x0 = 1, arm 2 when x0 = 0; arm 3 is middling for everyone.
    return World(
        make_arms([0.01] * 3),
        rate=np.array([0.0, 0.05, 0.30, 0.12]),
        rate_if_x0=np.array([0.0, 0.30, 0.05, 0.12]),
        seed=seed,
    )


def _share_optimal(world: World, rounds: list[tuple[DecisionContext, Decisions]]) -> float:
    hits = [np.mean(d.arms == world.best(c.features, c.mask)) for c, d in rounds]
    return float(np.mean(hits))


@pytest.mark.parametrize("name", sorted(CONTEXT_FREE))
def test_context_free_bandit_learns_best_arm(name: str) -> None:
    world = _flat_world()
    rounds = list(run(CONTEXT_FREE[name](), world, rounds=30, n=300))
    # After 30 rounds of 300 customers the best arm gets the bulk of the last five rounds.
    bound = {"epsilon_greedy": 0.85, "ucb": 0.6, "thompson": 0.9}[name]
    assert _share_optimal(world, rounds[-5:]) > bound
    assert _share_optimal(world, rounds[:1]) < 0.5  # it did have to learn


@pytest.mark.parametrize("name", sorted(CONTEXTUAL))
def test_contextual_bandit_learns_arm_per_feature(name: str) -> None:
    world = _context_world()
    rounds = list(run(CONTEXTUAL[name](), world, rounds=25, n=300))
    assert _share_optimal(world, rounds[-5:]) > 0.8
    # No context-free policy can exceed ~0.5 here: the best arm depends on the feature.
    flat = list(run(ThompsonPolicy(seed=1), _context_world(), rounds=25, n=300))
    assert _share_optimal(world, flat[-5:]) < 0.65


def test_thompson_revenue_uses_value_model() -> None:
    # Arm 1 converts twice as often, but arm 2's orders are worth four times as much.
    world = World(make_arms([0.01, 0.01]), rate=np.array([0.0, 0.2, 0.1]), seed=3)
    pol = ThompsonPolicy(seed=2)
    for ctx, dec in run(pol, world, rounds=5, n=400, metric="revenue"):
        del ctx, dec
    assert pol.stats is not None
    pol.stats.revenue[2] *= 4.0  # as if arm 2's orders had been four times larger
    pol.stats.revenue_sq[2] *= 16.0
    ctx = world.context(5, 2000, 10, metric="revenue")
    assert np.mean(pol.act(ctx).arms == 2) > 0.9


def _learned(name: str, rounds: int = 6) -> tuple[Policy, World]:
    factory = {**CONTEXT_FREE, **CONTEXTUAL}[name]
    world = _context_world(seed=5) if name in CONTEXTUAL else _flat_world(seed=5)
    pol = factory()
    for _ in run(pol, world, rounds=rounds, n=200 if rounds > 1 else 30):
        pass
    return pol, world


def _frequencies(pol: Policy, ctx: DecisionContext, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Empirical arm frequencies and mean propensity per chosen arm over repeated batches."""
    n_arms = len(ctx.arms)
    counts = np.zeros(n_arms)
    psum = np.zeros(n_arms)
    for _ in range(repeats):
        dec = pol.act(ctx)
        assert np.all((dec.pscores > 0) & (dec.pscores <= 1))
        assert ctx.mask[np.arange(len(ctx)), dec.arms].all()
        counts += np.bincount(dec.arms, minlength=n_arms)
        psum += np.bincount(dec.arms, weights=dec.pscores, minlength=n_arms)
    freq = counts / counts.sum()
    mean_p = np.divide(psum, counts, out=np.zeros(n_arms), where=counts > 0)
    return freq, mean_p


@pytest.mark.parametrize("name", ["epsilon_greedy", "ucb", "thompson", "lin_ucb", "lin_ts", "budgeted_ts"])
def test_propensities_match_frequencies(name: str) -> None:
    pol, world = _learned(name, rounds=1)  # still unsure: its choices are spread over arms
    if hasattr(pol, "pscore_samples"):
        pol.pscore_samples = 200  # Monte Carlo propensities: bias below 1 / 201
    # One customer, many times; small batches, many of them: budgeted_ts draws once per batch.
    n = 20
    mask = np.ones((n, len(world.arms)), dtype=bool)
    mask[:, 2] = False  # a masked arm is never chosen
    x = np.tile(np.array([[1.0, 0.5]], dtype=np.float32), (n, 1))
    ctx = world.context(6, n, 30, mask=mask, features=x)
    freq, mean_p = _frequencies(pol, ctx, repeats=500)
    assert freq[2] == 0
    if name != "lin_ucb":  # deterministic: one arm with propensity 1
        assert np.count_nonzero(freq > 0.02) >= 2
    chosen = freq > 0.02
    # Each arm's propensity estimates its probability, and they add up to one over the arms.
    assert np.abs(freq[chosen] - mean_p[chosen]).max() < 0.07
    assert abs(mean_p[freq > 0].sum() - 1.0) < 0.05


@pytest.mark.parametrize("name", [*sorted({**CONTEXT_FREE, **CONTEXTUAL}), "explore_then_commit"])
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    if name == "explore_then_commit":
        world = _flat_world(seed=5)
        pol: Policy = ExploreThenCommitPolicy(test_share=0.5, test_iterations=3, seed=1)
        for _ in run(pol, world, rounds=2, n=200):
            pass
    else:
        pol, world = _learned(name)
    pol.save(tmp_path)
    sim = Simulator(load_scenario("retail"), n_customers=100)
    again = load_policy(tmp_path, sim)
    assert type(again) is type(pol) and again.config() == pol.config()
    ctx = world.context(6, 300, 30)
    a, b = pol.act(ctx), again.act(ctx)
    assert np.array_equal(a.arms, b.arms) and np.array_equal(a.pscores, b.pscores)
    # The pending decisions came along too: the same feedback teaches both the same.
    for p in (pol, again):
        for _ in run(p, World(world.arms, world.rate, world.rate_if_x0, seed=9), rounds=2, n=100):
            pass
    a, b = pol.act(ctx), again.act(ctx)
    assert np.array_equal(a.arms, b.arms) and np.array_equal(a.pscores, b.pscores)


@pytest.mark.parametrize("budget", [0.0, 0.5, 3.0, 20.0, 400.0])
def test_budgeted_never_asks_more_than_available(budget: float) -> None:
    # Offers reserve far more (worst case 15) than they are expected to cost.
    world = World(
        make_arms([0.001, 0.04, 0.6, 0.001], [0.0, 0.0, 0.0, 15.0]),
        rate=np.array([0.0, 0.02, 0.05, 0.08, 0.06]),
        seed=4,
    )
    pol = BudgetedTSPolicy(prior_rate=0.05, pscore_samples=8, seed=0)
    for ctx, dec in run(pol, world, rounds=4, n=500, budget=budget, goal_remaining=1e6):
        assert world.arms.worst_case_cost[dec.arms].sum() <= ctx.budget_available + 1e-9
    for mode in (True, False):
        pol.reserve_aware = mode
        ctx = world.context(4, 2000, 10, budget=budget, goal_remaining=1e6)
        dec = pol.act(ctx)
        assert world.arms.worst_case_cost[dec.arms].sum() <= budget + 1e-9


def test_budgeted_paces_spend_across_waves() -> None:
    # A small need per wave buys it with cheap arms and leaves the budget for later waves.
    world = World(make_arms([0.01, 0.5]), rate=np.array([0.0, 0.05, 0.08]), seed=6)
    pol = BudgetedTSPolicy(pscore_samples=8, seed=0, **{**SMALL, "prior_rate": 0.05})
    spent = []
    for ctx, dec in run(pol, world, rounds=10, n=1000, budget=1000.0, goal_remaining=100.0):
        spent.append(float(world.arms.send_cost[dec.arms].sum()))
        del ctx
    assert max(spent) < 0.25 * 1000.0
    assert np.mean([s > 0 for s in spent]) == 1.0


def test_explore_then_commit_tests_then_commits() -> None:
    # Arm 3 has the lowest cost per conversion; arm 4 converts best but costs far more.
    world = World(make_arms([0.01, 0.01, 0.01, 1.0]), rate=np.array([0.0, 0.05, 0.10, 0.30, 0.40]), seed=2)
    pol = ExploreThenCommitPolicy(test_share=0.3, test_iterations=2, seed=0)
    rounds = list(run(pol, world, rounds=5, n=2000))
    first = rounds[0][1]
    tested = first.arms != 0
    assert 0.25 < tested.mean() < 0.35
    assert np.allclose(first.pscores[tested], 0.3 / 4) and np.allclose(first.pscores[~tested], 0.7)
    assert pol.winner == 3
    assert all(np.all(d.arms == 3) and np.all(d.pscores == 1) for _, d in rounds[2:])
    by_rate = ExploreThenCommitPolicy(test_share=0.3, test_iterations=2, criterion="rate", seed=0)
    list(run(by_rate, _flat_like(world), rounds=3, n=2000))
    assert by_rate.winner == 4


def _flat_like(world: World) -> World:
    return World(world.arms, world.rate, world.rate_if_x0, seed=11)


def test_names_and_hyperparameters() -> None:
    sim = Simulator(load_scenario("retail"), n_customers=100)
    pol = make_policy("epsilon_greedy:epsilon=0.05,delay_correction=false", sim, seed=3)
    assert isinstance(pol, EpsilonGreedyPolicy)
    assert pol.epsilon == 0.05 and pol.delay_correction is False and pol.seed == 3
    pol = make_policy("budgeted_ts:pace=1.2,sampling=cell", sim)
    assert isinstance(pol, BudgetedTSPolicy) and pol.pace == 1.2 and pol.sampling == "cell"
    assert make_policy("oracle:pace=1.3", sim).config()["pace"] == 1.3
    with pytest.raises(UnknownPolicyError, match="no hyperparameter 'nope'"):
        make_policy("ucb:nope=1", sim)
    with pytest.raises(UnknownPolicyError, match="takes a float"):
        make_policy("ucb:alpha=lots", sim)
    with pytest.raises(UnknownPolicyError, match="known"):
        make_policy("lin_nope", sim)


class _MaskCheck(Policy):
    """Wraps a policy; fails the test if it ever chooses an arm its context masks."""

    name = "mask_check"

    def __init__(self, inner: Policy) -> None:
        super().__init__(0)
        self.inner = inner

    def act(self, ctx: DecisionContext) -> Decisions:
        dec = self.inner.act(ctx)
        assert ctx.mask[np.arange(len(ctx)), dec.arms].all()
        assert np.all((dec.pscores > 0) & (dec.pscores <= 1))
        return dec

    def update(self, feedback: object) -> None:
        self.inner.update(feedback)  # type: ignore[arg-type]


BANDIT_NAMES = (
    "random",
    "fixed:email/bestsellers/none",
    "oracle",
    "explore_then_commit",
    "epsilon_greedy",
    "ucb",
    "thompson",
    "lin_ucb",
    "lin_ts",
    "budgeted_ts",
)


def test_names_are_registered() -> None:
    for name in BANDIT_NAMES:
        assert name.split(":")[0] in {n.split(":")[0] for n in POLICY_NAMES}


@pytest.mark.parametrize("name", BANDIT_NAMES)
def test_short_retail_campaign(name: str) -> None:
    sim = Simulator(load_scenario("retail"), n_customers=3000)
    spec = CampaignSpec(goal=Goal(target=120), budget=60.0, max_iterations=5, customers_per_iteration=1000)
    report = Campaign(spec, sim, _MaskCheck(make_policy(name, sim, seed=0)), seed=0).run()
    assert report.iterations >= 1
    assert report.spend <= spec.budget + 1e-9
    assert report.sends > 0
