"""Spend never exceeds the budget, whatever the actions (property tests with random actions).

The money is added up independently of the environments' ledgers, by a protocol wrapper around
the simulator that sees every send and every redeemed offer; the delayed conversions still in
flight when an episode ends are drained and counted too.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
from tests.envs.conftest import TINY, RecordingSimulator

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    budget=st.floats(min_value=0.5, max_value=300.0),
    seed=st.integers(0, 2**16),
    actions=st.lists(st.tuples(*(st.integers(0, 10**6) for _ in range(5))), min_size=1, max_size=25),
    scenario=st.sampled_from(["retail", str(TINY)]),
)
def test_campaign_spend_never_exceeds_budget(
    budget: float, seed: int, actions: list[tuple[int, ...]], scenario: str
) -> None:
    sim = RecordingSimulator(scenario, n_customers=1500)
    env = gym.make(
        envs.CAMPAIGN_ID,
        simulator=sim,
        budget=budget,
        goal_target=10**6,
        max_iterations=30,
        customers_per_iteration=800,
    ).unwrapped
    nvec = env.action_space.nvec
    env.reset(seed=seed)
    for raw in actions:
        _, _, terminated, truncated, info = env.step(np.asarray(raw) % nvec)
        assert info["spent"] + info["reserved"] <= budget + 1e-9
        assert sim.money_spent() <= info["spent"] + 1e-4  # the ledger knows all spend so far
        if terminated or truncated:
            break
    sim.drain()
    assert sim.money_spent() <= budget + 1e-4  # ledger amounts are micro-dollars


@SETTINGS
@given(
    budget=st.floats(min_value=0.01, max_value=200.0),
    seed=st.integers(0, 2**16),
    delayed=st.booleans(),
    batch_size=st.integers(1, 64),
)
def test_bandit_spend_never_exceeds_budget(budget: float, seed: int, delayed: bool, batch_size: int) -> None:
    sim = RecordingSimulator("retail", n_customers=1000)
    env = gym.make(
        envs.CUSTOMER_BANDIT_ID,
        simulator=sim,
        budget=budget,
        batch_size=batch_size,
        episode_length=15,
        delayed=delayed,
    )
    env.action_space.seed(seed)
    env.reset(seed=seed)
    truncated = False
    while not truncated:
        _, _, _, truncated, info = env.step(env.action_space.sample())
        assert info["spent"] + info["reserved"] <= budget + 1e-9
        assert not np.any(info["refused"] & info["invalid"])
    sim.drain()
    assert sim.money_spent() <= budget + 1e-4  # ledger amounts are micro-dollars
    assert abs(sim.money_spent() - info["spent"]) < 1e-6  # all settled at the last step
