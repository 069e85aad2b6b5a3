"""Experiment fixtures: a tiny experiment, a local 2-CPU Ray on loopback shared by the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.config import ExperimentConfig, parse_config


def tiny_config(tmp: Path, **overrides: Any) -> ExperimentConfig:
    """A few-second experiment: retail with 800 customers, 5 iterations, a small goal."""
    data: dict[str, Any] = {
        "name": "tiny",
        "scenarios": ["retail"],
        "policies": [
            {"name": "oracle"},
            {"name": "random"},
            {"name": "epsilon_greedy", "grid": {"epsilon": [0.05, 0.3]}},
        ],
        "seeds": [0, 1],
        "training": {"campaigns": 1},
        "evaluation": {"n_customers": 800, "max_iterations": 5, "goal_target": 5, "budget": 50},
        "tracking": {
            "tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
            "artifact_location": str(tmp / "artifacts"),
        },
    }
    data.update(overrides)
    return parse_config(data)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A local Ray with 2 CPUs bound to 127.0.0.1 (dashboard off, usage stats off)."""
    from experiments.runner import ray_session

    with ray_session(2, None):
        yield
