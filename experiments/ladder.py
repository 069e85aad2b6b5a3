"""The diagnostic ladder: where a learner's money goes, rung by rung (``benchmark --ladder``).

Rungs (see :mod:`policies.ladder`): ``oracle`` (true expectations), ``feature_oracle`` (the best
model of the observable features), ``estimation`` (the learner's model fitted offline on a large
randomized sample, frozen), ``exploration`` (the learner online from a cold start), each with the
oracle's allocator, and ``pacing`` (the learner itself, with its own pacing). Every rung runs
the same campaigns (scenario default goal and budget, seeds 0..K-1); the result is a
:class:`experiments.benchmark.BenchmarkResult` whose ``policy`` column names the rung, so its
ratio to the oracle (and to the rung above) shows what each step costs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent import CampaignReport, CampaignSpec
from experiments.benchmark import (
    BenchmarkResult,
    PolicyBuilder,
    ProgressCallback,
    campaign_lp_bound,
    from_runs,
    run_campaign,
)
from experiments.pretrain import pretrain
from policies import load_policy, make_policy
from policies.funnel import FunnelTSPolicy
from policies.ladder import ModelAllocator, RandomTeacher
from simulators import Simulator, load_scenario
from simulators.scenario import Scenario

RUNGS = ("oracle", "feature_oracle", "estimation", "exploration", "pacing")
"""The ladder's rungs, from the true expectations to the learner itself."""

TeachCallback = Callable[[str, int, CampaignReport], None]


def fit_offline(
    scenario: Scenario, learner: str, campaigns: int, on_campaign: TeachCallback | None = None
) -> FunnelTSPolicy:
    """The learner's model fitted on ``campaigns`` randomized campaigns of ``scenario`` (training
    seeds; half of each wave's candidates get a uniformly random arm)."""
    sim = Simulator(scenario)
    model = make_policy(learner, sim, seed=0)
    if not isinstance(model, FunnelTSPolicy):
        raise ValueError(f"the ladder needs a funnel_ts learner, got {learner!r}")
    teacher = RandomTeacher(model, seed=0)

    def progress(i: int, _seed: int, report: CampaignReport) -> None:
        if on_campaign is not None:
            on_campaign(scenario.name, i, report)

    # The sample is the scenario's campaigns without their goal and budget: random arms spend a
    # default budget within a few waves, and the sample is meant to cover every wave's states.
    base = CampaignSpec.from_scenario(scenario)
    spec = base.model_copy(
        update={
            "budget": 1e9,
            "goal": base.goal.model_copy(update={"target": 1e12}),
            "stop_on_projected": False,
        }
    )
    pretrain(teacher, scenario, campaigns, seed=0, spec=spec, on_campaign=progress)
    return model


def rung_builders(
    scenario: Scenario,
    folder: Path,
    learner: str = "funnel_ts",
    teach_campaigns: int = 4,
    on_teach: TeachCallback | None = None,
) -> dict[str, PolicyBuilder]:
    """How each rung's policy is made for one evaluation campaign (the fitted model of the
    estimation rung is saved in ``folder`` and every campaign loads its own copy)."""
    fitted = fit_offline(scenario, learner, teach_campaigns, on_teach).save(folder)

    def estimation(sim: Simulator, seed: int) -> ModelAllocator:
        model = load_policy(fitted, sim)
        assert isinstance(model, FunnelTSPolicy)
        return ModelAllocator(model, learn=False, explore=0.0, seed=seed)

    def exploration(sim: Simulator, seed: int) -> ModelAllocator:
        model = make_policy(learner, sim, seed=seed)
        assert isinstance(model, FunnelTSPolicy)
        return ModelAllocator(model, learn=True, seed=seed)

    return {
        "oracle": lambda sim, seed: make_policy("oracle", sim, seed=seed),
        "feature_oracle": lambda sim, seed: make_policy("feature_oracle", sim, seed=seed),
        "estimation": estimation,
        "exploration": exploration,
        "pacing": lambda sim, seed: make_policy(learner, sim, seed=seed),
    }


def run_ladder(
    scenarios: Sequence[str],
    seeds: int,
    learner: str = "funnel_ts",
    rungs: Sequence[str] = RUNGS,
    teach_campaigns: int = 4,
    on_run: ProgressCallback | None = None,
    on_teach: TeachCallback | None = None,
) -> BenchmarkResult:
    """Run every rung on every scenario for seeds 0..seeds-1.

    Args:
        scenarios: built-in names or YAML paths.
        seeds: evaluation seeds per rung.
        learner: the learner (a ``funnel_ts`` name, optionally with ``:key=value`` settings).
        rungs: a subset of :data:`RUNGS`, in order.
        teach_campaigns: randomized campaigns the estimation rung's model is fitted on.
        on_run: called after every campaign.
        on_teach: called after every randomized fitting campaign.
    """
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise ValueError(f"unknown rungs {unknown}; known: {list(RUNGS)}")
    runs = []
    bounds: dict[str, dict[int, float | None]] = {}
    with tempfile.TemporaryDirectory(prefix="campaign-opt-ladder-") as tmp:
        for i, name in enumerate(scenarios):
            sc = load_scenario(name)
            teach = teach_campaigns if "estimation" in rungs else 0
            builders = rung_builders(sc, Path(tmp) / str(i), learner, teach, on_teach)
            bounds[sc.name] = {seed: campaign_lp_bound(sc, seed) for seed in range(seeds)}
            for rung in rungs:
                for seed in range(seeds):
                    runs.append(run_campaign(sc, builders[rung], seed, rung))
                    if on_run is not None:
                        on_run(runs[-1])
    return from_runs(runs, bounds, "ladder")


def ladder_steps(result: BenchmarkResult) -> list[dict[str, Any]]:
    """Per scenario and rung: goal reached rate, median cost to goal, ratio to the oracle and to
    the rung above (``None`` where a rung never reached the goal)."""
    out: list[dict[str, Any]] = []
    for scenario in dict.fromkeys(r.scenario for r in result.rows):
        above: float | None = None
        for row in (r for r in result.rows if r.scenario == scenario):
            cost = row.cost_to_goal_median
            out.append(
                {
                    "scenario": scenario,
                    "rung": row.policy,
                    "goal_reached_rate": row.goal_reached_rate,
                    "cost_to_goal_median": cost,
                    "conversions_median": row.conversions_median,
                    "ratio_to_oracle": row.ratio_to_oracle,
                    "ratio_to_rung_above": cost / above if cost is not None and above else None,
                }
            )
            above = cost if cost is not None else above
    return out
