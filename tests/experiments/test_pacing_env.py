"""``PacingEnv``: the pacer's campaign world (see experiments/pacing_env.py)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from experiments.pacing_env import SCENARIOS, PacingEnv

LOW = np.array([-1.0, -1.0], dtype=np.float32)  # price x0.25, volume x0.5
HIGH = np.array([1.0, 1.0], dtype=np.float32)  # price x4, volume x3


def run(
    env: PacingEnv, seed: int, action: np.ndarray
) -> tuple[list[np.ndarray], list[float], dict[str, Any]]:
    obs, info = env.reset(seed=seed)
    observations, rewards, done = [obs], [], False
    while not done:
        obs, reward, done, truncated, info = env.step(action)
        assert not truncated
        observations.append(obs)
        rewards.append(reward)
    return observations, rewards, info


def test_checkers_pass() -> None:
    env = PacingEnv()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True, skip_render_check=True)


def test_same_seed_same_episode() -> None:
    action = np.array([0.3, -0.2], dtype=np.float32)
    a = run(PacingEnv(), 7, action)
    b = run(PacingEnv(), 7, action)
    assert len(a[0]) == len(b[0])
    for x, y in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(x, y)
    assert a[1] == b[1]
    assert a[2] == b[2]
    c = run(PacingEnv(), 8, action)
    assert c[1] != a[1]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_episode_ends_by_the_deadline(scenario: str) -> None:
    env = PacingEnv(scenarios=(scenario,))
    for seed, action in ((0, LOW), (1, HIGH)):
        observations, rewards, info = run(env, seed, action)
        assert len(rewards) <= env.world.iterations  # one step per wave that sends
        assert info["stop_reason"] in ("goal_reached", "max_iterations", "budget_exhausted")
        assert info["spent"] <= env.world.budget + 1e-6
        for obs in observations:
            assert env.observation_space.contains(obs)
        # the reward is the spend plus the terminal term documented in experiments/pacing_env.py
        spent = info["spent"] / info["budget"]
        if info["goal_reached"]:
            assert sum(rewards) == pytest.approx(2.0 - 2.0 * spent)
        else:
            shortfall = max(info["goal"] - info["conversions"], 0.0) / info["goal"]
            assert sum(rewards) == pytest.approx(-spent - 2.0 * shortfall)


def test_pushing_harder_spends_more() -> None:
    env = PacingEnv()
    high = low = 0.0
    for seed in range(12):
        high += run(env, seed, HIGH)[2]["spent"] / env.world.budget
        low += run(env, seed, LOW)[2]["spent"] / env.world.budget
    assert high > 1.5 * low


def test_step_after_the_end_is_refused() -> None:
    env = PacingEnv(scenarios=("hillstrom",))
    run(env, 0, HIGH)
    with pytest.raises(RuntimeError):
        env.step(HIGH)
