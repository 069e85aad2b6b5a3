"""One trial: expand an experiment config into trials, train a trial's policy and evaluate it
against the yardstick oracle (:func:`run_trial`, a pure function of its :class:`TrialSpec`).

How trials run together (serially or on Ray) is :mod:`experiments.ray_backend`; the whole
experiment, with its tracking, is :mod:`experiments.runner`.
"""

from __future__ import annotations

import functools
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.config import (
    PRETRAINABLE,
    RL_ALGORITHMS,
    EvaluationConfig,
    ExperimentConfig,
    PolicyConfig,
)
from experiments.records import (
    TrialResult,
    TrialSpec,
    effective_cost,
    zip_folder,
)
from simulators.money import scale_to_population

if TYPE_CHECKING:
    from agent import CampaignReport, CampaignSpec
    from agent.loop import Campaign
    from policies import Policy
    from simulators import Scenario

DECISION_SAMPLE = 200
"""Decisions of the first evaluation campaign kept in a trial's decision-log sample."""


def _resolve_scenario(name: str) -> str:
    """Absolute path for a YAML file (workers and Tune trials run in other folders)."""
    return str(Path(name).resolve()) if name.endswith((".yaml", ".yml")) else name


def expand_trials(cfg: ExperimentConfig, policies: Sequence[PolicyConfig] | None = None) -> list[TrialSpec]:
    """The grid trials of ``cfg``: scenario x policy x grid point x seed (search-space policies
    are left out: they are sampled by Ray Tune, see :func:`run_experiment`)."""
    out: list[TrialSpec] = []
    for scenario in cfg.scenarios:
        for pol in policies if policies is not None else cfg.policies:
            if pol.is_search:
                continue
            for point in pol.grid_points():
                for seed in cfg.seeds:
                    out.append(
                        TrialSpec(
                            scenario=_resolve_scenario(scenario),
                            policy=pol.name,
                            params=point,
                            seed=seed,
                            training=cfg.training_for(pol),
                            evaluation=cfg.evaluation,
                        )
                    )
    return out


def evaluation_spec(sc: Scenario, ev: EvaluationConfig) -> tuple[CampaignSpec, int]:
    """The campaign spec and population size of the evaluation protocol.

    Target, budget and customers per iteration default to the scenario's, scaled by
    ``n_customers / population.size`` (explicit values are taken as given).
    """
    from agent import CampaignSpec, Goal

    n = ev.n_customers or sc.population.size
    g = sc.default_goal
    scaled = scale_to_population(g.target, g.budget, g.customers_per_iteration, n, sc.population.size)
    spec = CampaignSpec(
        goal=Goal(metric=ev.goal_metric or g.metric, target=ev.goal_target or scaled.target),
        budget=ev.budget or scaled.budget,
        max_iterations=ev.max_iterations or g.max_iterations,
        customers_per_iteration=ev.customers_per_iteration or scaled.customers_per_iteration,
    )
    return spec, n


def _achieved(report: CampaignReport) -> list[float]:
    """Goal metric reached after each iteration."""
    key = "revenue_total" if report.goal_metric == "revenue" else "conversions_total"
    return [float(getattr(r, key)) for r in report.history]


@functools.lru_cache(maxsize=64)
def _oracle(scenario: str, evaluation_json: str, seed: int) -> tuple[tuple[float, ...], float | None]:
    """The yardstick oracle's achieved goal metric per iteration and its cost to goal (cached per
    process; ``evaluation.oracle`` names it)."""
    from agent import Campaign
    from policies import make_policy
    from simulators import Simulator, load_scenario

    sc = load_scenario(scenario)
    ev = EvaluationConfig.model_validate_json(evaluation_json)
    spec, n = evaluation_spec(sc, ev)
    sim = Simulator(sc, n_customers=n)
    report = Campaign(
        spec, sim, make_policy(ev.oracle, sim, seed=seed), seed=seed, scenario_name=sc.name
    ).run()
    return tuple(_achieved(report)), report.cost_to_goal


def _train(spec: TrialSpec, sc: Scenario, folder: Path) -> Policy:
    """Train the trial's policy and save it into ``folder``; returns the trained policy."""
    from experiments.pretrain import pretrain
    from policies import make_policy
    from simulators import Simulator

    tr = spec.training
    n_train = tr.n_customers or spec.evaluation.n_customers or sc.population.size
    if spec.family in RL_ALGORITHMS:
        from policies.rl import train_rl

        return train_rl(
            spec.family,
            spec.scenario,
            tr.timesteps,
            folder,
            spec.seed,
            n_customers=n_train,
            progress=False,
            hyperparameters=dict(spec.params),
            threads=1,
        )
    sim = Simulator(sc, n_customers=n_train)
    pol = make_policy(spec.make_name, sim, seed=spec.seed)
    if spec.family in PRETRAINABLE and tr.campaigns > 0:
        train_eval = spec.evaluation.model_copy(update={"n_customers": n_train, "seeds": None})
        cspec, _ = evaluation_spec(sc, train_eval)
        pretrain(pol, sc, tr.campaigns, spec.seed, spec=cspec, n_customers=n_train)
    pol.save(folder)
    return pol


def _decision_rows(campaign: Campaign, limit: int) -> list[dict[str, Any]]:
    log, names = campaign.log, campaign.sim.arms.names
    k = min(len(log), limit)
    return [
        {
            "decision_id": int(log.decision_id[i]),
            "iteration": int(log.iteration[i]),
            "customer": int(log.customer[i]),
            "arm": int(log.arm[i]),
            "arm_name": names[int(log.arm[i])],
            "pscore": float(log.pscore[i]),
            "reserved": float(log.reserved[i]),
        }
        for i in range(k)
    ]


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _pad(xs: Sequence[float], n: int) -> list[float]:
    if not xs:
        return [0.0] * n
    return list(xs) + [xs[-1]] * (n - len(xs))


OracleRuns = dict[int, tuple[tuple[float, ...], float | None]]
"""Per campaign seed: the yardstick oracle's achieved goal metric per iteration, its cost to goal."""


def oracle_runs(scenario: str, evaluation_json: str, seeds: Sequence[int]) -> OracleRuns:
    """The yardstick oracle's campaigns for these seeds (what :func:`run_trial` compares with)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return {s: _oracle(scenario, evaluation_json, s) for s in seeds}


def run_trial(spec: TrialSpec, oracles: OracleRuns | None = None) -> TrialResult:
    """Train, then evaluate one trial (single-threaded BLAS and torch: deterministic).

    Args:
        spec: the trial.
        oracles: the oracle campaigns of its campaign seeds, if already run (see
            :func:`oracle_runs`; the Ray path runs each once, as its own task); otherwise they
            are run here (and cached per process).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _run_trial(spec, oracles or {})


def _run_trial(spec: TrialSpec, oracles: OracleRuns) -> TrialResult:
    from agent import Campaign
    from policies import load_policy
    from simulators import Simulator, load_scenario

    sc = load_scenario(spec.scenario)
    cspec, n = evaluation_spec(sc, spec.evaluation)
    ev_json = spec.evaluation.model_dump_json()
    with tempfile.TemporaryDirectory(prefix="trial-") as tmp:
        folder = Path(tmp) / "policy"
        t0 = time.perf_counter()
        _train(spec, sc, folder)
        t_train = time.perf_counter() - t0
        archive = zip_folder(folder)
        campaigns: list[dict[str, Any]] = []
        curves: list[dict[str, list[float]]] = []
        sample: list[dict[str, Any]] = []
        t1 = time.perf_counter()
        for j, cseed in enumerate(spec.campaign_seeds):
            sim = Simulator(sc, n_customers=n)
            pol = load_policy(folder, sim)
            camp = Campaign(cspec, sim, pol, seed=cseed, scenario_name=sc.name)
            rep = camp.run()
            if j == 0:
                sample = _decision_rows(camp, DECISION_SAMPLE)
            oracle_curve, oracle_cost = oracles.get(cseed) or _oracle(spec.scenario, ev_json, cseed)
            achieved = _achieved(rep)
            length = max(len(achieved), len(oracle_curve))
            ours, theirs = _pad(achieved, length), _pad(list(oracle_curve), length)
            h = rep.history
            curves.append(
                {
                    "spend": _pad([r.spend_total for r in h], length),
                    "spend_iteration": [r.spend for r in h] + [0.0] * (length - len(h)),
                    "reserved": [r.reserved for r in h] + [0.0] * (length - len(h)),
                    "conversions": _pad([float(r.conversions_total) for r in h], length),
                    "revenue": _pad([r.revenue_total for r in h], length),
                    "goal_progress": _pad([r.goal_progress for r in h], length),
                    "oracle_goal_progress": [min(v / rep.goal_target, 1.0) for v in theirs],
                    "regret": [o - p for o, p in zip(theirs, ours, strict=True)],
                }
            )
            ratio = (
                rep.cost_to_goal / oracle_cost
                if rep.cost_to_goal is not None and oracle_cost is not None and oracle_cost > 0
                else None
            )
            campaigns.append(
                {
                    "seed": cseed,
                    "stop_reason": rep.stop_reason,
                    "goal_reached": rep.goal_reached,
                    "cost_to_goal": rep.cost_to_goal,
                    "oracle_cost_to_goal": oracle_cost,
                    "ratio_to_oracle": ratio,
                    "spend": rep.spend,
                    "budget": rep.budget,
                    "conversions": rep.conversions,
                    "revenue": rep.revenue,
                    "roi": rep.roi,
                    "iterations": rep.iterations,
                    "goal_progress": rep.goal_progress,
                    "final_regret": curves[-1]["regret"][-1] if length else 0.0,
                }
            )
        t_eval = time.perf_counter() - t1
    length = max(len(c["spend"]) for c in curves)
    keys = list(curves[0])
    curve = [
        {k: float(np.mean([_pad(c[k], length)[i] for c in curves])) for k in keys} | {"budget": cspec.budget}
        for i in range(length)
    ]
    metrics: dict[str, float | None] = {
        "goal_reached": float(np.mean([c["goal_reached"] for c in campaigns])),
        "cost_to_goal": _mean([c["cost_to_goal"] for c in campaigns]),
        "effective_cost_to_goal": _mean(
            [
                effective_cost(c["cost_to_goal"], c["spend"], c["goal_progress"], c["budget"])
                for c in campaigns
            ]
        ),
        "oracle_cost_to_goal": _mean([c["oracle_cost_to_goal"] for c in campaigns]),
        "ratio_to_oracle": _mean([c["ratio_to_oracle"] for c in campaigns]),
        "roi": _mean([c["roi"] for c in campaigns]),
        "spend": _mean([c["spend"] for c in campaigns]),
        "conversions": _mean([float(c["conversions"]) for c in campaigns]),
        "revenue": _mean([c["revenue"] for c in campaigns]),
        "iterations": _mean([float(c["iterations"]) for c in campaigns]),
        "goal_progress": _mean([c["goal_progress"] for c in campaigns]),
        "final_regret": _mean([c["final_regret"] for c in campaigns]),
        "seconds_train": t_train,
        "seconds_eval": t_eval,
    }
    return TrialResult(
        spec=spec,
        metrics=metrics,
        curve=curve,
        campaigns=campaigns,
        policy_archive=archive,
        decision_sample=sample,
    )
