"""Perturbed scenarios: valid, reproducible, unchanged at strength 0, costs and goal kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent import Campaign, CampaignSpec
from policies import make_policy
from simulators import Simulator, load_scenario
from simulators.perturb import perturb, write_scenario


@pytest.mark.parametrize("name", ["retail", "winback", "hillstrom"])
def test_the_written_file_validates_and_keeps_costs_size_and_goal(name: str, tmp_path: Path) -> None:
    base = load_scenario(name)
    world = load_scenario(write_scenario(perturb(base, 0.3, np.random.default_rng(1)), tmp_path / "w.yaml"))
    assert world.default_goal == base.default_goal and world.population.size == base.population.size
    for k, seg in base.population.segments.items():  # only the uplift mix moves
        assert world.population.segments[k].model_copy(update={"uplift_mix": seg.uplift_mix}) == seg
        assert sum(world.population.segments[k].uplift_mix.values()) == pytest.approx(1.0)
    assert world.arms == base.arms and world.order_value == base.order_value
    for k, ch in base.channels.items():
        assert world.channels[k].send_cost == ch.send_cost
        assert world.channels[k].deliver_rate == ch.deliver_rate
    for k, off in base.offers.items():
        assert (world.offers[k].discount, world.offers[k].max_value) == (off.discount, off.max_value)
    moved = [world.channels[k].open_rate != ch.open_rate for k, ch in base.channels.items()]
    assert all(moved)
    assert sum(world.dynamics.conversion_delay) == pytest.approx(1.0)


def test_the_same_seed_gives_the_same_file(tmp_path: Path) -> None:
    base = load_scenario("retail")
    a = write_scenario(perturb(base, 0.3, np.random.default_rng(7)), tmp_path / "a.yaml")
    b = write_scenario(perturb(base, 0.3, np.random.default_rng(7)), tmp_path / "b.yaml")
    c = write_scenario(perturb(base, 0.3, np.random.default_rng(8)), tmp_path / "c.yaml")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_strength_zero_gives_the_original_parameters(tmp_path: Path) -> None:
    base = load_scenario("winback")
    assert perturb(base, 0.0, np.random.default_rng(0)) == base
    assert load_scenario(write_scenario(base, tmp_path / "same.yaml")) == base
    with pytest.raises(ValueError, match="strength"):
        perturb(base, -0.1, np.random.default_rng(0))


def test_probabilities_stay_valid_under_strong_noise() -> None:
    world = perturb(load_scenario("retail"), 3.0, np.random.default_rng(3))  # validated on return
    assert all(0 <= t.organic_visit <= 1 for t in world.uplift_types.values())


def test_the_oracle_runs_on_a_perturbed_world() -> None:
    sc = perturb(load_scenario("retail"), 0.3, np.random.default_rng(2))
    sim = Simulator(sc, n_customers=3000)
    spec = CampaignSpec.from_scenario(sc).model_copy(
        update={"customers_per_iteration": 600, "budget": 500.0, "max_iterations": 5}
    )
    rep = Campaign(spec, sim, make_policy("oracle", sim, seed=0), seed=0).run()
    assert rep.spend <= spec.budget and rep.conversions > 0


def test_the_cli_writes_a_loadable_scenario(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    out = tmp_path / "retail_p.yaml"
    args = ["scenario", "perturb", "retail", "--strength", "0.3", "--seed", "4", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    world = load_scenario(out)
    assert world.name == "retail_perturbed_4"
    assert world.model_copy(update={"name": "retail"}) == perturb(
        load_scenario("retail"), 0.3, np.random.default_rng(4)
    )
    bad = CliRunner().invoke(app, ["scenario", "perturb", "nowhere", "--out", str(out)])
    assert bad.exit_code == 2
