"""Policy names and saved folders: every bad value is an :class:`UnknownPolicyError` naming it;
the catalogue covers every policy class and the lists derived from it are the lists they replaced."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import policies
from policies import UnknownPolicyError, load_policy, make_policy
from policies.base import Policy
from policies.registry import (
    CATALOGUE,
    KINDS,
    NON_ADAPTIVE,
    PEERS,
    POLICY_CLASSES,
    POLICY_NAMES,
    PRETRAINABLE,
    RL_ALGORITHMS,
    names,
)
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
        ("offline_value:epsilon=2", "epsilon"),
        ("offline_value:ridge=0", "ridge"),
        ("offline_value:interactions=maybe", "interactions"),
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


def _nameable(cls: type[Policy]) -> bool:
    """``cls`` can be built from a name: every constructor argument but the live ones has a default
    (a wrapper around another policy, such as the benchmark ladder's rungs, cannot)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return all(
        p.default is not p.empty
        or p.name in ("self", "simulator", "seed")
        or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        for p in params
    )


def _policy_classes() -> set[type[Policy]]:
    """Every concrete policy class with a name, in every module of the package."""
    found: set[type[Policy]] = set()
    for info in pkgutil.iter_modules(policies.__path__):
        module = importlib.import_module(f"policies.{info.name}")
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Policy)
                and not inspect.isabstract(obj)
                and obj.__module__ == module.__name__
                and isinstance(getattr(obj, "name", None), str)
            ):
                found.add(obj)
    return found


BASES = {"sb3"}
"""Named classes that are bases of named policies, not policies (``SB3Policy`` under ppo and a2c)."""


def test_the_catalogue_covers_every_policy_class() -> None:
    classes = {c.name: c for c in _policy_classes() if c.name not in BASES}
    catalogued = {n: e.cls for n, e in CATALOGUE.items()}
    # every class that can be built from a name is catalogued (fixed:ARM takes its arm instead) ...
    assert {n for n, c in classes.items() if _nameable(c)} <= set(catalogued)
    # ... and every entry is one of the package's classes, under its own name
    assert {n: classes.get(n) for n in catalogued} == catalogued
    for name, entry in CATALOGUE.items():
        assert entry.name == name == POLICY_CLASSES[name].name
        assert entry.kind in KINDS
        assert entry.description and "\n" not in entry.description


def test_derived_lists_equal_the_lists_they_replaced() -> None:
    assert POLICY_NAMES == (
        "random",
        "fixed:ARM",
        "oracle",
        "feature_oracle",
        "explore_then_commit",
        "epsilon_greedy",
        "ucb",
        "thompson",
        "lin_ucb",
        "lin_ts",
        "budgeted_ts",
        "funnel_ts",
        "offline_value",
        "ppo",
        "a2c",
        "vw",
        "mabwiser",
    )
    assert list(POLICY_CLASSES) == [n.partition(":")[0] for n in POLICY_NAMES]
    assert RL_ALGORITHMS == ("ppo", "a2c")
    assert PRETRAINABLE == (
        "epsilon_greedy",
        "ucb",
        "thompson",
        "lin_ucb",
        "lin_ts",
        "budgeted_ts",
        "funnel_ts",
        "offline_value",
    )
    assert set(NON_ADAPTIVE) == {"oracle", "feature_oracle", "random", "fixed", "explore_then_commit"}
    assert PEERS == ("vw", "mabwiser")


def test_experiments_read_the_catalogue() -> None:
    from experiments import config, pretrain

    assert config.PRETRAINABLE is PRETRAINABLE and pretrain.PRETRAINABLE is PRETRAINABLE
    assert config.RL_ALGORITHMS is RL_ALGORITHMS


def test_names_filters_by_kind_adaptivity_and_pretraining() -> None:
    assert names() == tuple(CATALOGUE)
    assert names("yardstick") == ("oracle", "feature_oracle")
    assert names("contextual", pretrainable=True) == ("lin_ucb", "lin_ts", "budgeted_ts", "offline_value")
    assert names(adaptive=True, pretrainable=False) == ("ppo", "a2c", "vw", "mabwiser")
    assert set(names(adaptive=True)) | set(NON_ADAPTIVE) == set(CATALOGUE)


def test_reading_the_catalogue_imports_no_policy_class() -> None:
    code = (
        "import sys; from policies.registry import CATALOGUE, POLICY_NAMES, names; "
        "assert not [m for m in ('policies.rl', 'policies.peers', 'policies.feature_oracle', 'scipy') "
        "if m in sys.modules], sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
