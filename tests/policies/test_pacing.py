"""Pacers: the shipped PPO pacer, the action mapping and the numpy actor (see policies/pacing.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from policies.pacing import (
    PACERS,
    PPO_PACER_PATH,
    PRICE_RANGE,
    VOLUME_RANGE,
    MLPActor,
    PacingAction,
    PacingObservation,
    PPOPacer,
    RulePacer,
    action_to_multipliers,
    make_pacer,
)

os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="campaign-opt-sb3-"))

EDGES = [
    PacingObservation(1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0),  # the start
    PacingObservation(0.05, 0.0, 1.0, 0.0, 10.0, 0.0, 0.5),  # last wave, broke, nothing reached
    PacingObservation(0.05, 1.0, 0.0, 1.0, 0.0, 50.0, 2.0),  # goal in flight, money left
    PacingObservation(0.5, 0.5, 0.5, 0.1, 1.0, 1.0, 1.0),
    PacingObservation(1e-3, 1e-9, 1e-9, 0.0, 1e6, 1e-9, 0.0),
]


def in_range(a: PacingAction) -> bool:
    return bool(
        PRICE_RANGE[0] - 1e-9 <= a.price <= PRICE_RANGE[1] + 1e-9
        and VOLUME_RANGE[0] - 1e-9 <= a.volume <= VOLUME_RANGE[1] + 1e-9
    )


def test_catalogue() -> None:
    assert PACERS == ("rule", "ppo")
    assert isinstance(make_pacer("rule"), RulePacer)
    assert isinstance(make_pacer("ppo"), PPOPacer)
    with pytest.raises(ValueError, match="unknown pacer"):
        make_pacer("nope")


def test_action_mapping() -> None:
    low, high = action_to_multipliers((-1.0, -1.0)), action_to_multipliers((1.0, 1.0))
    assert [low.price, low.volume] == pytest.approx([0.25, 0.5])
    assert [high.price, high.volume] == pytest.approx([4.0, 3.0])
    assert action_to_multipliers((0.0, 0.0)).price == pytest.approx(1.0)
    assert action_to_multipliers((5.0, -7.0)) == action_to_multipliers((1.0, -1.0))  # clipped
    with pytest.raises(ValueError):
        action_to_multipliers((np.nan, 0.0))


def test_shipped_ppo_pacer_loads_and_stays_in_range() -> None:
    assert PPO_PACER_PATH.is_file()
    assert PPO_PACER_PATH.stat().st_size < 100_000
    pacer = make_pacer("ppo")
    for obs in EDGES:
        a = pacer(obs)
        assert in_range(a), (obs, a)
        assert np.isfinite(a.price) and np.isfinite(a.volume)


def test_actor_round_trip_refuses_pickles(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    actor = MLPActor(
        [(rng.normal(size=(7, 4)), rng.normal(size=4)), (rng.normal(size=(4, 2)), np.zeros(2))], "tanh"
    )
    path = actor.save(tmp_path / "a.npz")
    back = MLPActor.load(path)
    x = rng.normal(size=(3, 7))
    np.testing.assert_allclose(back(x), actor(x), rtol=1e-5, atol=1e-6)
    np.save(tmp_path / "bad.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        MLPActor.load(tmp_path / "bad.npy")


def test_numpy_forward_matches_sb3_predict(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from experiments.pacing import actor_from_model
    from experiments.pacing_env import PacingEnv

    model = PPO(
        "MlpPolicy",
        PacingEnv(),
        n_steps=128,
        batch_size=64,
        n_epochs=2,
        policy_kwargs={"net_arch": {"pi": [32, 32], "vf": [32, 32]}},
        seed=3,
        device="cpu",
    )
    model.learn(256)
    path = actor_from_model(model).save(tmp_path / "p.npz")
    pacer = PPOPacer(path)
    rng = np.random.default_rng(1)
    observations = [o.as_array() for o in EDGES] + list(rng.uniform(0, 3, size=(5, 7)).astype(np.float32))
    for obs in observations:
        expected, _ = model.predict(obs, deterministic=True)
        np.testing.assert_allclose(np.clip(pacer.actor(obs), -1.0, 1.0), expected, rtol=1e-4, atol=1e-5)
        got = pacer(PacingObservation(*map(float, obs)))
        want = action_to_multipliers(expected)
        assert got.price == pytest.approx(want.price, rel=1e-4)
        assert got.volume == pytest.approx(want.volume, rel=1e-4)


def test_train_pacer_writes_weights_and_report(tmp_path: Path) -> None:
    import json

    from experiments.pacing import train_pacer

    report = train_pacer(
        256,
        seed=3,
        out_path=tmp_path / "p.npz",
        config={"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1},
        eval_episodes=2,
        progress=False,
    )
    assert report["timesteps"] >= 256
    assert json.loads((tmp_path / "p.json").read_text()) == report
    for obs in EDGES:
        assert in_range(PPOPacer(tmp_path / "p.npz")(obs))
