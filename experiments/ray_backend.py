"""Running trials: one after the other in this process, or as Ray tasks on a local Ray (or a
cluster) (:func:`run_trials`), and tuning a policy's search space with Ray Tune
(:func:`tune_policy`). Serial and parallel runs give identical metrics (a trial is a pure
function of its spec, see :mod:`experiments.trials`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from experiments.config import (
    ExperimentConfig,
    PolicyConfig,
    Scalar,
    SearchSpace,
)
from experiments.records import (
    RunnerError,
    TrialResult,
    TrialSpec,
)
from experiments.trials import (
    _mean,
    _resolve_scenario,
    oracle_runs,
    run_trial,
)

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
