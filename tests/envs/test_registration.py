"""Registration on import, construction, and the argument checks of both environments."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import pytest

import envs
from simulators import Simulator, load_scenario
from tests.envs.conftest import SMALL, TINY, RecordingSimulator, check_protocol

IDS = (envs.CUSTOMER_BANDIT_ID, envs.CAMPAIGN_ID)


def test_ids_registered() -> None:
    for env_id in IDS:
        assert env_id in gym.registry


def test_import_only_registers() -> None:
    code = (
        "import sys, envs, gymnasium as gym; "
        "assert 'CampaignOpt/Campaign-v0' in gym.registry; "
        "print(sorted(m for m in sys.modules if m.startswith(('envs.', 'simulators', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_done_when_command() -> None:
    env = gym.make("CampaignOpt/Campaign-v0", scenario="retail")
    assert env.unwrapped.simulator.n_customers == 60_000 or env.unwrapped.simulator.n_customers > 0
    env.close()


def test_lazy_class_exports() -> None:
    from envs.campaign import CampaignEnv
    from envs.customer_bandit import CustomerBanditEnv

    assert envs.CampaignEnv is CampaignEnv
    assert envs.CustomerBanditEnv is CustomerBanditEnv
    with pytest.raises(AttributeError):
        _ = envs.NoSuchEnv  # type: ignore[attr-defined]


@pytest.mark.parametrize("env_id", IDS)
def test_yaml_path_and_simulator_object(env_id: str) -> None:
    env = gym.make(env_id, scenario=str(TINY))
    env.reset(seed=0)
    env.step(env.action_space.sample())
    sim = RecordingSimulator(TINY, n_customers=500)
    check_protocol(sim)
    kwargs = {"goal_target": 50.0, "budget": 100.0} if env_id == envs.CAMPAIGN_ID else {}
    env = gym.make(env_id, simulator=sim, **kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert sim.events
    # A built-in simulator that has not been reset yet is accepted as well.
    fresh = Simulator(load_scenario(TINY), n_customers=300)
    env = gym.make(env_id, simulator=fresh)
    env.reset(seed=0)
    env.step(env.action_space.sample())


@pytest.mark.parametrize("env_id", IDS)
def test_argument_errors(env_id: str) -> None:
    with pytest.raises(ValueError, match="either scenario= or simulator="):
        gym.make(env_id, scenario="retail", simulator=RecordingSimulator(TINY, 100))
    with pytest.raises(ValueError, match="n_customers"):
        gym.make(env_id, simulator=RecordingSimulator(TINY, 100), n_customers=10)
    with pytest.raises(ValueError, match="CustomerSimulator"):
        gym.make(env_id, simulator=object())
    with pytest.raises(ValueError, match="unknown scenario"):
        gym.make(env_id, scenario="no-such-scenario")
    with warnings.catch_warnings(), pytest.raises(ValueError, match="render_mode"):
        warnings.simplefilter("ignore")  # gymnasium warns about the mode first
        gym.make(env_id, scenario="retail", n_customers=SMALL, render_mode="human")


@pytest.mark.parametrize("env_id", IDS)
def test_step_before_reset(env_id: str) -> None:
    env = gym.make(env_id, scenario=str(TINY)).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


def test_campaign_needs_goal_without_scenario() -> None:
    with pytest.raises(ValueError, match="goal_target= and budget="):
        gym.make(envs.CAMPAIGN_ID, simulator=RecordingSimulator(TINY, 100))
