"""The experiment runner: expand a config into trials, train and evaluate each, in parallel with Ray.

A **trial** is one (scenario, policy, hyperparameter point, seed): the policy is trained (a
learning bandit warm-started on simulated campaigns, ``ppo``/``a2c`` trained with
Stable-Baselines3, baselines not at all), then evaluated on campaigns of the evaluation protocol.
Every evaluation campaign also runs the oracle with the same campaign seed: the regret curve and
the ratio to the oracle compare against it.

Execution:
    * ``workers=1`` and no ``address``: trials run one after the other in this process;
    * ``workers=N``: trials run as Ray tasks (one CPU each) on a local Ray started on loopback
      with usage stats off; ``address=...`` joins an existing cluster instead (every node needs
      this package installed);
    * policies whose grid holds a search space are tuned with Ray Tune (``tune`` section).

A trial is a pure function of its :class:`TrialSpec` (seeds are derived from it; BLAS and torch
run single-threaded inside a trial), so serial and parallel runs give identical metrics.

Tracking: workers return typed :class:`TrialResult` objects (metrics, curves, the saved policy
as a zip archive, a sample of the decision log) and **the driver logs everything to MLflow**
after the results come back: one parent run per experiment invocation, one nested run per
trial. Logging from one process keeps the SQLite store free of concurrent writers, works when
the workers are on other machines, and makes the logged values independent of scheduling.

Example:
    >>> from experiments.config import parse_config
    >>> cfg = parse_config({"name": "demo", "scenarios": ["retail"], "policies": [{"name": "random"}]})
    >>> [t.trial_id for t in expand_trials(cfg)]
    ['retail/random/seed=0']
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.config import (
    PRETRAINABLE,
    RL_ALGORITHMS,
    EvaluationConfig,
    ExperimentConfig,
    PolicyConfig,
    Scalar,
    SearchSpace,
)
from experiments.records import (
    TIMING_METRICS,
    Registration,
    RunnerError,
    TrialResult,
    TrialSpec,
    best_trial,
    decision_sample_csv,
    effective_cost,
    git_commit,
    package_versions,
    results_json,
    unzip_policy,
    zip_folder,
)
from simulators.money import scale_to_population

if TYPE_CHECKING:
    from agent import CampaignReport, CampaignSpec
    from agent.loop import Campaign
    from policies import Policy
    from simulators import Scenario

__all__ = [  # the records are re-exported: callers import them from here as before
    "DECISION_SAMPLE",
    "TIMING_METRICS",
    "ExperimentResult",
    "OracleRuns",
    "Registration",
    "ResultCallback",
    "RunnerError",
    "TrialResult",
    "TrialSpec",
    "best_trial",
    "decision_sample_csv",
    "effective_cost",
    "evaluation_spec",
    "expand_trials",
    "git_commit",
    "oracle_runs",
    "package_versions",
    "ray_session",
    "results_json",
    "run_experiment",
    "run_trial",
    "run_trials",
    "total_trials",
    "tune_policy",
    "unzip_policy",
    "warm_worker",
]

DECISION_SAMPLE = 200
"""Decisions of the first evaluation campaign kept in a trial's decision-log sample."""


# -- trials -------------------------------------------------------------------------------------


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


# -- execution ----------------------------------------------------------------------------------


ResultCallback = Callable[[TrialResult], None]


@contextmanager
def ray_session(workers: int, address: str | None) -> Iterator[None]:
    """A Ray runtime for the duration of the block.

    Local (``address=None``): ``workers`` CPUs, bound to 127.0.0.1, no dashboard, usage stats
    off; shut down afterwards. With ``address``: joins that cluster (left afterwards). An already
    initialized Ray is used as is.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        yield
        return
    env = {k: v for k, v in os.environ.items() if k in ("MLFLOW_DISABLE_TELEMETRY", "SB3_LOGDIR")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    kwargs: dict[str, Any] = {
        "runtime_env": {"env_vars": env},
        "log_to_driver": False,
        "configure_logging": False,
    }
    try:
        if address is None:
            ray.init(
                num_cpus=max(int(workers), 1),
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                **kwargs,
            )
        else:
            ray.init(address=address, **kwargs)
    except Exception as err:  # ray raises ConnectionError, RuntimeError, ValueError...
        raise RunnerError(f"cannot start or join Ray ({address or 'local'}): {err}") from err
    try:
        yield
    finally:
        ray.shutdown()


def run_trials(
    specs: Sequence[TrialSpec],
    workers: int = 1,
    address: str | None = None,
    on_result: ResultCallback | None = None,
) -> list[TrialResult]:
    """Run trials serially (``workers=1``, no ``address``) or as Ray tasks; results in ``specs`` order.

    Args:
        specs: the trials.
        workers: parallel Ray tasks on a local Ray (ignored with ``address``).
        address: a Ray cluster address to join.
        on_result: called in the driver as each trial finishes (progress).
    """
    if not specs:
        return []
    if workers <= 1 and address is None:
        out = []
        for s in specs:
            r = run_trial(s)
            out.append(r)
            if on_result is not None:
                on_result(r)
        return out
    with ray_session(workers, address):
        return _ray_map(specs, on_result)


def warm_worker(spec: TrialSpec) -> int:
    """Run a (small) trial and return the process id: starts and warms a Ray worker (benchmarks)."""
    run_trial(spec)
    return os.getpid()


def _ray_map(specs: Sequence[TrialSpec], on_result: ResultCallback | None) -> list[TrialResult]:
    import ray

    # The oracle campaigns are shared by every trial of a scenario, protocol and seeds: run each
    # once, as its own task, and hand the result to the trials (Ray resolves the reference).
    oracle_task = ray.remote(num_cpus=1, max_retries=0)(oracle_runs)
    oracle_refs: dict[tuple[str, str, tuple[int, ...]], Any] = {}
    for s in specs:
        key = (s.scenario, s.evaluation.model_dump_json(), tuple(s.campaign_seeds))
        if key not in oracle_refs:
            oracle_refs[key] = oracle_task.remote(*key)
    task: Any = ray.remote(num_cpus=1, max_retries=0)(run_trial)
    refs = [
        task.remote(s, oracle_refs[(s.scenario, s.evaluation.model_dump_json(), tuple(s.campaign_seeds))])
        for s in specs
    ]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[TrialResult | None] = [None] * len(refs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            r: TrialResult = ray.get(ref)
            results[index[ref]] = r
            if on_result is not None:
                on_result(r)
    return [r for r in results if r is not None]


# -- Ray Tune -----------------------------------------------------------------------------------


def _tune_metric(results: Sequence[TrialResult], metric: str) -> float:
    key = "effective_cost_to_goal" if metric == "cost_to_goal" else metric
    vals = [r.metrics.get(key) for r in results]
    m = _mean(vals)
    if m is None:  # e.g. ratio_to_oracle of a sample that never reached the goal
        return math.inf
    return m


def _tune_trainable(config: dict[str, Any], base: dict[str, Any]) -> None:
    """One Tune trial: one hyperparameter sample over the seeds, reporting after each seed."""
    import pickle

    from ray import tune

    params = {k: _plain(v) for k, v in config.items()}
    ctx = tune.get_context()
    sample = str(ctx.get_trial_id()) if ctx is not None else ""
    done: list[TrialResult] = []
    for seed in base["seeds"]:
        spec = TrialSpec(
            scenario=base["scenario"],
            policy=base["policy"],
            params={k: params[k] for k in base["order"]},
            seed=seed,
            training=base["training"],
            evaluation=base["evaluation"],
            sample=sample,
        )
        done.append(run_trial(spec))
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "results.pkl").write_bytes(pickle.dumps(done))
            metric = _tune_metric(done, base["metric"])
            tune.report(
                {base["metric"]: metric if math.isfinite(metric) else 1e30, "seeds_done": len(done)},
                checkpoint=tune.Checkpoint.from_directory(tmp),
            )


def _plain(v: Any) -> Scalar:
    if isinstance(v, np.generic):
        item = v.item()
        assert isinstance(item, bool | int | float | str)
        return item
    assert isinstance(v, bool | int | float | str)
    return v


def tune_policy(
    cfg: ExperimentConfig,
    pol: PolicyConfig,
    scenario: str,
    workers: int,
    on_result: ResultCallback | None = None,
) -> list[TrialResult]:
    """Tune one search-space policy on one scenario with Ray Tune (inside a Ray session).

    Returns every seed's result of every sample (a sample the scheduler stopped has fewer seeds).
    """
    import pickle

    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler
    from ray.tune.search import BasicVariantGenerator

    t = cfg.tune
    space: dict[str, Any] = {}
    for key, value in pol.grid.items():
        if isinstance(value, SearchSpace):
            space[key] = value.to_tune()
        elif isinstance(value, list):
            space[key] = tune.grid_search(list(value))
        else:
            space[key] = value
    n_seeds = len(cfg.seeds)
    scheduler: TrialScheduler
    if t.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=n_seeds,
            grace_period=min(t.grace_period, n_seeds),
            reduction_factor=2,
        )
    elif t.scheduler == "median":
        scheduler = MedianStoppingRule(
            time_attr="training_iteration", grace_period=t.grace_period, min_samples_required=2
        )
    else:
        scheduler = FIFOScheduler()  # type: ignore[no-untyped-call]
    base = {
        "scenario": _resolve_scenario(scenario),
        "policy": pol.name,
        "order": list(pol.grid),
        "seeds": list(cfg.seeds),
        "training": cfg.training_for(pol),
        "evaluation": cfg.evaluation,
        "metric": t.metric,
    }
    trainable = tune.with_resources(tune.with_parameters(_tune_trainable, base=base), {"cpu": 1})
    with tempfile.TemporaryDirectory(prefix="tune-") as storage:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=t.metric,
                mode=t.mode,
                num_samples=t.num_samples,
                scheduler=scheduler,
                search_alg=BasicVariantGenerator(random_state=t.seed, max_concurrent=max(workers, 1)),
            ),
            run_config=tune.RunConfig(
                storage_path=storage,
                name=f"{cfg.name}-{pol.name}",
                verbose=0,
            ),
        )
        with contextlib.redirect_stdout(sys.stderr):  # Tune's tables must not mix with --json output
            grid = tuner.fit()
        out: list[TrialResult] = []
        for i in range(len(grid)):
            res = grid[i]
            if res.error is not None:
                raise RunnerError(f"Tune trial of {pol.name} failed: {res.error}")
            if res.checkpoint is None:
                continue
            with res.checkpoint.as_directory() as d:
                done: list[TrialResult] = pickle.loads((Path(d) / "results.pkl").read_bytes())
            for r in done:
                out.append(r)
                if on_result is not None:
                    on_result(r)
    out.sort(key=lambda r: (r.spec.sample, r.spec.seed))
    return out


# -- the whole experiment -----------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentResult:
    """An experiment run: its trials and where they are tracked."""

    name: str
    results: list[TrialResult]
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    run_ids: dict[str, str] = field(default_factory=dict)
    """MLflow run id per trial id."""
    registered: Registration | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (trials with their run ids, the comparison rows, the registration)."""
        from experiments.compare import compare_results

        return {
            "name": self.name,
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
            "seconds": self.seconds,
            "trials": [r.to_dict() | {"run_id": self.run_ids.get(r.trial_id)} for r in self.results],
            "rows": [asdict(row) for row in compare_results(self.results)],
            "registered": asdict(self.registered) if self.registered else None,
        }


def total_trials(cfg: ExperimentConfig) -> int:
    """Upper bound of the trials the experiment runs (Tune may stop samples early)."""
    return cfg.n_trials()


def run_experiment(
    cfg: ExperimentConfig,
    workers: int = 1,
    address: str | None = None,
    on_result: ResultCallback | None = None,
    track: bool = True,
    register: str | None = None,
    tracking_uri: str | None = None,
) -> ExperimentResult:
    """Run every trial of ``cfg``, log them to MLflow, optionally register the best policy.

    Args:
        cfg: the validated experiment.
        workers: parallel trials (Ray tasks on a local Ray when > 1).
        address: join this Ray cluster instead of starting one.
        on_result: called as each trial finishes (progress).
        track: log to MLflow (parent run + nested trial runs).
        register: register the best trial's policy under this model name (alias ``champion``).
        tracking_uri: overrides ``MLFLOW_TRACKING_URI`` and the config's URI.

    Raises:
        RunnerError: Ray or the tracking store cannot be used.
    """
    from experiments.tracking import log_experiment, register_best, resolve_tracking_uri

    start = time.perf_counter()
    uri = resolve_tracking_uri(cfg, tracking_uri) if track or register else None
    specs = expand_trials(cfg)
    search = [(s, p) for s in cfg.scenarios for p in cfg.policies if p.is_search]
    results: list[TrialResult]
    if search:
        with ray_session(workers, address):
            results = run_trials(specs, workers=workers, address=address, on_result=on_result)
            for scenario, pol in search:
                results += tune_policy(cfg, pol, scenario, workers, on_result)
    else:
        results = run_trials(specs, workers=workers, address=address, on_result=on_result)
    seconds = time.perf_counter() - start
    if not (track or register):
        return ExperimentResult(name=cfg.name, results=results, seconds=seconds)
    assert uri is not None
    logged = log_experiment(cfg, results, uri, workers=workers, address=address)
    registered = register_best(cfg, results, logged, register, uri) if register else None
    return ExperimentResult(
        name=cfg.name,
        results=results,
        tracking_uri=uri,
        experiment_id=logged.experiment_id,
        parent_run_id=logged.parent_run_id,
        run_ids=logged.run_ids,
        registered=registered,
        seconds=seconds,
    )
