"""Experiment files: the shipped configs load; every wrong key or value names its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.config import (
    ConfigError,
    ExperimentConfig,
    SearchSpace,
    builtin_configs,
    load_config,
    parse_config,
    policy_name,
)


def _base(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "tiny",
        "scenarios": ["retail"],
        "policies": [{"name": "epsilon_greedy", "grid": {"epsilon": [0.05, 0.1]}}],
        "seeds": [0, 1],
    }
    data.update(overrides)
    return data


def test_the_shipped_configs_load() -> None:
    configs = builtin_configs()
    assert {"bandits_vs_baselines", "ppo_tuning", "hillstrom_offers", "learning_engine"} <= set(configs)
    for path in configs.values():
        cfg = load_config(path)
        assert isinstance(cfg, ExperimentConfig) and cfg.n_trials() > 0
    ppo = load_config(configs["ppo_tuning"])
    assert ppo.tune.scheduler == "asha"
    assert any(p.is_search for p in ppo.policies)


def test_grid_lists_are_crossed_and_scalars_fixed() -> None:
    cfg = parse_config(
        _base(
            policies=[
                {"name": "ucb", "grid": {"alpha": [0.5, 1.0], "prior_beta": 2.0, "prior_alpha": [1, 3]}}
            ]
        )
    )
    points = cfg.policies[0].grid_points()
    assert len(points) == 4
    assert {"alpha": 0.5, "prior_beta": 2.0, "prior_alpha": 3} in points
    assert cfg.n_trials() == 4 * 2
    assert policy_name("ucb", points[0]) == "ucb:alpha=0.5,prior_beta=2.0,prior_alpha=1"


def test_defaults_and_frozen() -> None:
    cfg = parse_config(_base())
    assert cfg.tracking.tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert cfg.tracking.artifact_location == "mlruns/"
    assert cfg.experiment_name == "tiny"
    with pytest.raises(Exception):  # noqa: B017 (pydantic's frozen-instance error)
        cfg.name = "other"  # type: ignore[misc]


def test_search_spaces_parse() -> None:
    cfg = parse_config(
        _base(
            policies=[
                {
                    "name": "ppo",
                    "grid": {
                        "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
                        "gamma": {"type": "choice", "values": [0.9, 0.99]},
                        "n_steps": {"type": "randint", "low": 64, "high": 257},
                    },
                }
            ]
        )
    )
    grid = cfg.policies[0].grid
    assert isinstance(grid["learning_rate"], SearchSpace) and grid["learning_rate"].type == "loguniform"
    assert cfg.policies[0].is_search and cfg.policies[0].grid_points() == [{}]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"sceanrios": ["retail"]}, "sceanrios", "Extra inputs"),
        ({"scenarios": ["atlantis"]}, "scenarios.0", "unknown scenario 'atlantis'"),
        ({"policies": [{"name": "bogus"}]}, "policies.0.name", "unknown policy 'bogus'"),
        ({"policies": [{"name": "ppo", "grid": {"lr": [0.1]}}]}, "policies.0.grid.lr", "learning_rate"),
        ({"policies": [{"name": "ucb", "grid": {"lr": [0.1]}}]}, "policies.0.grid.lr", "no hyperparameter"),
        (
            {"policies": [{"name": "epsilon_greedy", "grid": {"epsilon": ["lots"]}}]},
            "policies.0.grid.epsilon",
            "takes a float",
        ),
        (
            {"policies": [{"name": "epsilon_greedy", "grid": {"epsilon": [1.5]}}]},
            "policies.0.grid.epsilon",
            "[0, 1]",
        ),
        (
            {
                "policies": [
                    {"name": "ppo", "grid": {"learning_rate": {"type": "loguniform", "low": 0, "high": 1}}}
                ]
            },
            "policies.0.grid.learning_rate",
            "low > 0",
        ),
        (
            {
                "policies": [
                    {"name": "ppo", "grid": {"learning_rate": {"type": "normal", "low": 0, "high": 1}}}
                ]
            },
            "policies.0.grid.learning_rate.type",
            "loguniform",
        ),
        ({"policies": [{"name": "ucb", "grid": {"alpha": [None]}}]}, "policies.0.grid.alpha.0", "got None"),
        ({"seeds": [0, 0]}, "seeds", "each seed once"),
        ({"evaluation": {"budget": -5}}, "evaluation.budget", "greater than 0"),
        ({"tracking": {"tracking_uri": "file:///tmp/mlruns"}}, "tracking.tracking_uri", "sqlite"),
        ({"tune": {"scheduler": "hyperband"}}, "tune.scheduler", "asha"),
        ({"evaluation": {"oracle": "random"}}, "evaluation.oracle", "pattern"),
        ({"evaluation": {"oracle": "oracle:speed=2"}}, "evaluation.oracle", "no hyperparameter 'speed'"),
    ],
)
def test_a_wrong_key_or_value_names_the_field(overrides: dict[str, Any], field: str, words: str) -> None:
    data = _base(**overrides)
    if "sceanrios" in overrides:
        del data["scenarios"]
    with pytest.raises(ConfigError) as info:
        parse_config(data, "exp.yaml")
    message = str(info.value)
    assert message.startswith("exp.yaml: ")
    assert f"{field}: " in message, message
    assert words in message, message


def test_load_config_reports_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(_base(policies=[{"name": "ucb", "grid": {"lr": 1}}])))
    with pytest.raises(ConfigError, match=r"policies\.0\.grid\.lr: "):
        load_config(ok)
