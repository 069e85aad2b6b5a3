"""Policy names and saved folders: every bad value is an :class:`UnknownPolicyError` naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies import UnknownPolicyError, load_policy, make_policy
from simulators import Simulator, load_scenario


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(load_scenario("retail"), n_customers=1)


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("epsilon_greedy:epsilon=5", "epsilon"),
        ("epsilon_greedy:epsilon=nan", "epsilon"),
        ("epsilon_greedy:epsilon=-inf", "epsilon"),
        ("epsilon_greedy:prior_alpha=0", "prior_alpha"),
        ("ucb:alpha=-1", "alpha"),
        ("thompson:pscore_samples=0", "pscore_samples"),
        ("thompson:pscore_samples=1.5", "pscore_samples"),
        ("explore_then_commit:test_share=0", "test_share"),
        ("explore_then_commit:test_iterations=0", "test_iterations"),
        ("explore_then_commit:criterion=luck", "criterion"),
        ("lin_ucb:ridge=0", "ridge"),
        ("lin_ts:prior_rate=2", "prior_rate"),
        ("lin_ts:interactions=colour", "colour"),
        ("budgeted_ts:pace=-1", "pace"),
        ("budgeted_ts:sampling=x", "sampling"),
        ("budgeted_ts:reserve_aware=maybe", "reserve_aware"),
        ("oracle:pace=0", "pace"),
        ("oracle:pace=1e999", "pace"),
        ("ppo", "model_path"),
        ("a2c:deterministic=false", "model_path"),
        ("ppo:model_path=/nonexistent/model", "/nonexistent/model"),
        ("ppo:volume_levels=0.5", "volume_levels"),
        ("vw:value_per_unit=-5", "value_per_unit"),
        ("vw:exploration=--bogus", "exploration"),
        ("vw:exploration=--epsilon 0.1 -f /tmp/model", "exploration"),
        ("mabwiser:learning_policy=greedy", "learning_policy"),
        ("mabwiser:alpha=0", "alpha"),
    ],
)
def test_bad_hyperparameter_values_are_unknown_policy_errors(sim: Simulator, name: str, named: str) -> None:
    with pytest.raises(UnknownPolicyError, match=named):
        make_policy(name, sim)


def test_hyperparameters_take_their_annotated_types(sim: Simulator) -> None:
    assert make_policy("vw:value_per_unit=5", sim).config()["value_per_unit"] == 5.0
    assert make_policy("vw:exploration=--squarecb --gamma_scale 10", sim).config()["exploration"] == (
        "--squarecb --gamma_scale 10"
    )
    assert make_policy("budgeted_ts:sampling=batch,pace=1.5", sim).config()["pace"] == 1.5
    assert make_policy("epsilon_greedy:epsilon=0", sim).config()["epsilon"] == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope{", "not a readable policy file"),
        (b"\xff\xfe\x00\x80", "not a readable policy file"),
        ('{"policy": "thompson"}', "not a saved policy"),
        ("[1, 2]", "not a saved policy"),
        ('{"policy": "thompson", "config": [], "state": {}, "rng": {}}', "not a saved policy"),
        ('{"policy": "nope", "config": {}, "state": {}, "rng": {}}', "unknown policy 'nope'"),
        ('{"policy": "thompson", "config": {"colour": 1}, "state": {}, "rng": {}}', "usable thompson"),
        ('{"policy": "thompson", "config": {}, "state": {"trials": "x"}, "rng": {}}', "usable thompson"),
        ('{"policy": "thompson", "config": {}, "state": {}, "rng": {"state": 1}}', "usable thompson"),
    ],
)
def test_broken_policy_files_are_unknown_policy_errors(
    sim: Simulator, tmp_path: Path, text: str | bytes, message: str
) -> None:
    file = tmp_path / "policy.json"
    if isinstance(text, bytes):
        file.write_bytes(text)
    else:
        file.write_text(text)
    with pytest.raises(UnknownPolicyError, match=message):
        load_policy(tmp_path, sim)


def test_missing_policy_file_is_an_unknown_policy_error(sim: Simulator, tmp_path: Path) -> None:
    with pytest.raises(UnknownPolicyError, match="not a readable policy file"):
        load_policy(tmp_path, sim)


def test_saved_policy_round_trips(sim: Simulator, tmp_path: Path) -> None:
    make_policy("thompson:pscore_samples=7", sim, seed=3).save(tmp_path)
    assert json.loads((tmp_path / "policy.json").read_text())["config"]["pscore_samples"] == 7
    assert load_policy(tmp_path, sim).config()["pscore_samples"] == 7
