"""Gymnasium's and Stable-Baselines3's environment checkers, on every built-in scenario."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from tests.envs.conftest import SMALL

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    (envs.CAMPAIGN_ID, {}),
    (envs.CUSTOMER_BANDIT_ID, {}),
    (envs.CUSTOMER_BANDIT_ID, {"batch_size": 16, "delayed": True, "budget": 50.0}),
]


@pytest.mark.parametrize(("env_id", "kwargs"), CONFIGS, ids=["campaign", "bandit", "bandit-batch"])
def test_checkers_pass(scenario: str, env_id: str, kwargs: dict[str, Any]) -> None:
    env = gym.make(env_id, scenario=scenario, n_customers=SMALL, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test...
        if kwargs.get("batch_size", 1) > 1:
            # ...except SB3's advice to flatten a 2-D observation: a batch is (B, n_features)
            # by design, one row per customer.
            warnings.filterwarnings("ignore", message=".*unconventional shape")
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True, skip_render_check=True)
