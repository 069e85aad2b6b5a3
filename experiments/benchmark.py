"""The policy benchmark: cost to reach the goal, per scenario and policy, over seeds.

For each scenario and policy, every seed runs one full campaign on the scenario's default goal and
budget. A run that reaches its goal has a **cost to goal** (spend at the end of the iteration in
which the goal was reached); a run that does not is counted as failed and reported separately.
The **ratio to the oracle** is a policy's median cost to goal over the yardstick's: among the oracle
variants in the run (``oracle`` and any ``oracle:key=value``), the one that reached the goal most
often and, among those, the cheapest, so the ratio is never flattered by a wasteful oracle.

Example:
    >>> from experiments.benchmark import run_benchmark
    >>> result = run_benchmark(["retail"], ["oracle"], seeds=1)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent import Campaign, CampaignReport, CampaignSpec
from experiments.pretrain import PRETRAINABLE, pretrain
from policies import load_policy, make_policy
from policies.base import GoalMetric, Policy
from policies.registry import NON_ADAPTIVE, PEERS, POLICY_NAMES
from policies.yardsticks import lp_bound
from simulators import Simulator, load_scenario
from simulators.perturb import perturb
from simulators.scenario import Scenario


@dataclass(frozen=True)
class RunResult:
    """One campaign of the benchmark."""

    scenario: str
    policy: str
    seed: int
    goal_reached: bool
    cost_to_goal: float | None
    spend: float
    conversions: int
    revenue: float
    iterations: int
    seconds: float


@dataclass(frozen=True)
class BenchmarkRow:
    """Aggregate of one (scenario, policy) over seeds."""

    scenario: str
    policy: str
    runs: int
    goal_reached_rate: float
    failed: int
    cost_to_goal_median: float | None
    cost_to_goal_q25: float | None
    cost_to_goal_q75: float | None
    conversions_median: float
    spend_median: float
    ratio_to_oracle: float | None
    seconds_median: float


@dataclass(frozen=True)
class BenchmarkResult:
    """Every run, the aggregated table, per scenario the oracle variant used as yardstick, and
    per scenario and seed the ``lp_bound`` (:mod:`policies.yardsticks`; ``None`` when the goal
    cannot be reached even fractionally)."""

    rows: list[BenchmarkRow]
    runs: list[RunResult]
    yardstick: dict[str, str]
    lp_bound: dict[str, dict[int, float | None]] = field(default_factory=dict)
    track: str = "cold-start"

    def lp_bound_median(self, scenario: str) -> float | None:
        """Median over seeds of a scenario's ``lp_bound`` (``None`` when none is finite)."""
        values = [v for v in self.lp_bound.get(scenario, {}).values() if v is not None]
        return float(np.median(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "track": self.track,
            "rows": [asdict(r) for r in self.rows],
            "runs": [asdict(r) for r in self.runs],
            "yardstick": dict(self.yardstick),
            "lp_bound": {
                s: {"seeds": {str(k): v for k, v in seeds.items()}, "median": self.lp_bound_median(s)}
                for s, seeds in self.lp_bound.items()
            },
            "targets": target_check(self),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        """Rebuild from :meth:`to_dict` output (the rows are re-aggregated from the runs)."""
        bounds = {s: {int(k): v for k, v in b["seeds"].items()} for s, b in data.get("lp_bound", {}).items()}
        return from_runs([RunResult(**r) for r in data["runs"]], bounds, str(data.get("track", "cold-start")))


def family(policy: str) -> str:
    """A policy's family name: ``oracle:reserve_aware=true`` -> ``oracle``."""
    return policy.split(":", 1)[0]


ProgressCallback = Callable[[RunResult], None]


PolicyBuilder = Callable[[Simulator, int], Policy]
"""Builds the policy of one campaign from the evaluation world and the seed."""


def run_campaign(scenario: Scenario, build: PolicyBuilder, seed: int, label: str) -> RunResult:
    """The benchmark's one evaluation: a full campaign of ``scenario``'s default goal and budget
    with the policy ``build`` makes for the world (oracles read it) and the seed."""
    sim = Simulator(scenario)
    pol = build(sim, seed)
    start = time.perf_counter()
    spec = CampaignSpec.from_scenario(scenario)
    report = Campaign(spec, sim, pol, seed=seed, scenario_name=scenario.name).run()
    return RunResult(
        scenario=report.scenario or scenario.name,
        policy=label,
        seed=seed,
        goal_reached=report.goal_reached,
        cost_to_goal=report.cost_to_goal,
        spend=report.spend,
        conversions=report.conversions,
        revenue=report.revenue,
        iterations=report.iterations,
        seconds=time.perf_counter() - start,
    )


def campaign_lp_bound(scenario: Scenario, seed: int) -> float | None:
    """``lp_bound`` of the benchmark's campaign on ``scenario`` with ``seed`` (the population the
    campaign draws; ``None`` when the goal is out of reach even fractionally)."""
    sim = Simulator(scenario)
    spec = CampaignSpec.from_scenario(scenario)
    Campaign(spec, sim, make_policy("random", sim, seed=seed), seed=seed)  # resets sim like a run
    metric: GoalMetric = "revenue" if spec.goal.metric == "revenue" else "conversions"
    bound = lp_bound(sim, spec.goal.target, metric, spec.max_iterations, spec.customers_per_iteration)
    return None if math.isinf(bound.value) else bound.value


def aggregate(runs: Sequence[RunResult]) -> tuple[list[BenchmarkRow], dict[str, str]]:
    """Median and interquartile range of cost to goal per (scenario, policy), ratio to the oracle.

    Returns:
        The rows, and per scenario the name of the oracle variant used as the yardstick.
    """
    keys: list[tuple[str, str]] = []
    for r in runs:
        if (r.scenario, r.policy) not in keys:
            keys.append((r.scenario, r.policy))
    medians: dict[tuple[str, str], float | None] = {}
    rows: list[BenchmarkRow] = []
    for scenario, policy in keys:
        group = [r for r in runs if r.scenario == scenario and r.policy == policy]
        costs = np.array([r.cost_to_goal for r in group if r.cost_to_goal is not None])
        q25, med, q75 = (
            (float(v) for v in np.percentile(costs, [25, 50, 75])) if costs.size else (None, None, None)
        )
        medians[(scenario, policy)] = med
        rows.append(
            BenchmarkRow(
                scenario=scenario,
                policy=policy,
                runs=len(group),
                goal_reached_rate=sum(r.goal_reached for r in group) / len(group),
                failed=sum(not r.goal_reached for r in group),
                cost_to_goal_median=med,
                cost_to_goal_q25=q25,
                cost_to_goal_q75=q75,
                conversions_median=float(np.median([r.conversions for r in group])),
                spend_median=float(np.median([r.spend for r in group])),
                ratio_to_oracle=None,
                seconds_median=float(np.median([r.seconds for r in group])),
            )
        )
    yardstick: dict[str, str] = {}
    for scenario in dict.fromkeys(r.scenario for r in rows):
        best = _best([r for r in rows if r.scenario == scenario and family(r.policy) == "oracle"])
        if best is not None and best.cost_to_goal_median is not None:
            yardstick[scenario] = best.policy
    out = []
    for row in rows:
        ref = yardstick.get(row.scenario)
        oracle = medians[(row.scenario, ref)] if ref else None
        ratio = row.cost_to_goal_median / oracle if oracle and row.cost_to_goal_median is not None else None
        out.append(BenchmarkRow(**{**asdict(row), "ratio_to_oracle": ratio}))
    return out, yardstick


def _best(rows: Sequence[BenchmarkRow]) -> BenchmarkRow | None:
    """The row with the most goals reached, then the lowest median cost to goal, then the most
    conversions (which ranks policies that never reached the goal)."""
    ranked = sorted(
        rows,
        key=lambda r: (
            -r.goal_reached_rate,
            np.inf if r.cost_to_goal_median is None else r.cost_to_goal_median,
            -r.conversions_median,
        ),
    )
    return ranked[0] if ranked else None


def target_check(result: BenchmarkResult) -> list[dict[str, Any]]:
    """The issue's targets per scenario, checked on the measured rows.

    For each scenario: the best adaptive policy (most goals reached, then cheapest median cost to
    goal; not an oracle, random, fixed arm, explore-then-commit or a peer), its ratio to the
    yardstick oracle, its ratio to explore-then-commit and to each peer's median cost to goal. A
    comparison against a policy that never reached the goal is ``None`` (the target is vacuous or
    cannot be judged) and said so in ``note``.
    """
    checks: list[dict[str, Any]] = []
    for scenario in dict.fromkeys(r.scenario for r in result.rows):
        rows = [r for r in result.rows if r.scenario == scenario]
        adaptive = [r for r in rows if family(r.policy) not in NON_ADAPTIVE + PEERS]
        best = _best(adaptive)
        if best is None:
            continue

        def vs(
            names: Sequence[str], rows: list[BenchmarkRow] = rows, best: BenchmarkRow = best
        ) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for r in rows:
                if family(r.policy) in names:
                    if r.cost_to_goal_median is None:
                        out[r.policy] = None if best.cost_to_goal_median is None else "never reached the goal"
                    elif best.cost_to_goal_median is None:
                        out[r.policy] = "best adaptive never reached the goal"
                    else:
                        out[r.policy] = round(best.cost_to_goal_median / r.cost_to_goal_median, 3)
            return out

        feature = [r for r in rows if family(r.policy) == "feature_oracle" and r.cost_to_goal_median]
        to_feature = (
            round(best.cost_to_goal_median / feature[0].cost_to_goal_median, 3)
            if feature and feature[0].cost_to_goal_median and best.cost_to_goal_median is not None
            else None
        )
        checks.append(
            {
                "scenario": scenario,
                "best_adaptive": best.policy,
                "goal_reached_rate": best.goal_reached_rate,
                "cost_to_goal_median": best.cost_to_goal_median,
                "yardstick": result.yardstick.get(scenario),
                "ratio_to_oracle": None if best.ratio_to_oracle is None else round(best.ratio_to_oracle, 3),
                "ratio_to_feature_oracle": to_feature,
                "lp_bound": result.lp_bound_median(scenario),
                "ratio_to_explore_then_commit": vs(("explore_then_commit",)),
                "ratio_to_peers": vs(PEERS),
            }
        )
    return checks


TRACKS = ("cold-start", "pretrained", "sim-to-real")
"""``cold-start``: no pretraining. ``pretrained``: trained on the scenario's own simulator (other
seeds), evaluated on new seeds. ``sim-to-real``: trained on the built-in scenario, evaluated on
perturbed versions of it (:func:`simulators.perturb.perturb`) it never saw."""
PERTURB_SEED_BASE = 7_000
"""The sim-to-real track's perturbed world ``k`` uses ``default_rng(PERTURB_SEED_BASE + k)``."""
TrainCallback = Callable[[str, str, int, CampaignReport], None]


def evaluation_worlds(
    scenario: Scenario, track: str, perturbations: int = 3, strength: float = 0.3
) -> list[Scenario]:
    """The worlds a track evaluates on: the scenario itself, or for ``sim-to-real`` its
    ``perturbations`` perturbed versions named ``NAME~perturbed-K``."""
    if track != "sim-to-real":
        return [scenario]
    return [
        perturb(scenario, strength, np.random.default_rng(PERTURB_SEED_BASE + k)).model_copy(
            update={"name": f"{scenario.name}~perturbed-{k}"}
        )
        for k in range(perturbations)
    ]


def expand_policies(names: Sequence[str]) -> list[str]:
    """``all`` expands to the whole catalogue (every policy that needs no argument), in order."""
    out: list[str] = []
    for name in names:
        extra = [p for p in POLICY_NAMES if p != "fixed"] if name == "all" else [name]
        out.extend(p for p in extra if p not in out)
    return out


def run_benchmark(
    scenarios: Sequence[str],
    policies: Sequence[str],
    seeds: int,
    policy_path: Path | None = None,
    on_run: ProgressCallback | None = None,
    track: str = "cold-start",
    train_campaigns: int = 2,
    perturbations: int = 3,
    strength: float = 0.3,
    on_train: TrainCallback | None = None,
) -> BenchmarkResult:
    """Run every (scenario, policy, seed) campaign of a track and aggregate.

    Args:
        scenarios: built-in names or YAML paths.
        policies: policy names as on the CLI (``oracle`` is needed for the ratio column; ``all``
            is the catalogue).
        seeds: seeds 0..seeds-1.
        policy_path: a saved policy to use for the policy named ``path``.
        on_run: called after every campaign (progress).
        track: one of :data:`TRACKS`. In the pretrained and sim-to-real tracks every pretrainable
            policy (:data:`policies.registry.PRETRAINABLE`) is trained once per scenario on
            ``train_campaigns`` simulated campaigns of the built-in scenario (training seeds,
            never an evaluation seed) and every evaluation starts from that trained state;
            other policies run as they are.
        train_campaigns: pretraining campaigns per policy and scenario.
        perturbations: perturbed worlds of the sim-to-real track.
        strength: perturbation strength of the sim-to-real track.
        on_train: called with ``(scenario, policy, i, report)`` after each training campaign.
    """
    if track not in TRACKS:
        raise ValueError(f"track must be one of {list(TRACKS)}, got {track!r}")
    runs: list[RunResult] = []
    bounds: dict[str, dict[int, float | None]] = {}
    policies = expand_policies(policies)
    with tempfile.TemporaryDirectory(prefix="campaign-opt-bench-") as tmp:
        for scenario in scenarios:
            sc = load_scenario(scenario)
            builders = {
                policy: _builder(policy, sc, track, train_campaigns, policy_path, Path(tmp), on_train)
                for policy in policies
            }
            for world in evaluation_worlds(sc, track, perturbations, strength):
                bounds[world.name] = {seed: campaign_lp_bound(world, seed) for seed in range(seeds)}
                for policy in policies:
                    for seed in range(seeds):
                        runs.append(run_campaign(world, builders[policy], seed, policy))
                        if on_run is not None:
                            on_run(runs[-1])
    return from_runs(runs, bounds, track)


def _builder(
    policy: str,
    scenario: Scenario,
    track: str,
    train_campaigns: int,
    policy_path: Path | None,
    tmp: Path,
    on_train: TrainCallback | None,
) -> PolicyBuilder:
    """How each evaluation campaign gets ``policy``: made fresh, loaded from ``policy_path``, or
    loaded from the state it reached in pretraining (trained once here)."""
    if policy == "path" and policy_path is not None:
        path = policy_path
        return lambda sim, seed: load_policy(path, sim)
    if track == "cold-start" or family(policy) not in PRETRAINABLE or train_campaigns <= 0:
        return lambda sim, seed: make_policy(policy, sim, seed=seed)
    pol = make_policy(policy, Simulator(scenario), seed=0)

    def progress(i: int, _seed: int, report: CampaignReport) -> None:
        if on_train is not None:
            on_train(scenario.name, policy, i, report)

    pretrain(pol, scenario, train_campaigns, seed=0, on_campaign=progress)
    folder = pol.save(Path(tempfile.mkdtemp(dir=tmp)))
    return lambda sim, seed: load_policy(folder, sim)


def from_runs(
    runs: Sequence[RunResult],
    lp_bounds: dict[str, dict[int, float | None]] | None = None,
    track: str = "cold-start",
) -> BenchmarkResult:
    """Aggregate runs (possibly from several invocations) into a result, with the scenarios'
    ``lp_bound`` per seed when known."""
    rows, yardstick = aggregate(runs)
    return BenchmarkResult(
        rows=rows, runs=list(runs), yardstick=yardstick, lp_bound=dict(lp_bounds or {}), track=track
    )


def _money(x: float | None) -> str:
    return "-" if x is None else f"${x:,.0f}"


def _ratio(v: float | str | None) -> str:
    return "-" if v is None else (f"{v:.2f}x" if isinstance(v, float) else v)


def _ratios(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_ratio(v)}" for k, v in d.items()) or "-"


def to_markdown(result: BenchmarkResult) -> str:
    """The aggregated table as GitHub markdown."""
    lines = [
        "| scenario | policy | goal reached | cost to goal (median) | IQR | ratio to oracle "
        "| conversions (median) | spend (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.rows:
        iqr = (
            "-"
            if r.cost_to_goal_q25 is None
            else f"{_money(r.cost_to_goal_q25)}–{_money(r.cost_to_goal_q75)}"
        )
        ratio = "-" if r.ratio_to_oracle is None else f"{r.ratio_to_oracle:.2f}x"
        lines.append(
            f"| {r.scenario} | {r.policy} | {r.runs - r.failed}/{r.runs} | {_money(r.cost_to_goal_median)} "
            f"| {iqr} | {ratio} | {r.conversions_median:,.0f} | {_money(r.spend_median)} |"
        )
    if result.yardstick:
        lines.append("")
        lines.append(
            "Ratio to oracle: against the oracle variant that reached the goal most often, then cheapest ("
            + ", ".join(f"{s}: `{p}`" for s, p in result.yardstick.items())
            + ")."
        )

    for scenario in result.lp_bound:
        lines.append(
            f"- {scenario}: lp_bound (a provable lower bound on the expected cost to the goal, median "
            f"over seeds) {_money(result.lp_bound_median(scenario))}."
        )
    for c in target_check(result):
        lines.append(
            f"- {c['scenario']}: best adaptive `{c['best_adaptive']}` reached the goal in "
            f"{c['goal_reached_rate']:.0%} of runs, median cost to goal {_money(c['cost_to_goal_median'])}, "
            f"ratio to oracle {_ratio(c['ratio_to_oracle'])}, "
            f"to feature_oracle {_ratio(c['ratio_to_feature_oracle'])}; "
            f"vs {_ratios(c['ratio_to_explore_then_commit'])}; vs peers: {_ratios(c['ratio_to_peers'])}."
        )
    return "\n".join(lines)


def plot(result: BenchmarkResult, path: Path) -> Path:
    """Bar chart of median cost to goal (IQR whiskers) per scenario and policy; failed runs noted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r.scenario for r in result.rows))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5 * len(scenarios), 4), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        rows = [r for r in result.rows if r.scenario == scenario]
        x = np.arange(len(rows))
        med = [r.cost_to_goal_median or 0.0 for r in rows]
        lo = [max(m - (r.cost_to_goal_q25 or m), 0) for m, r in zip(med, rows, strict=True)]
        hi = [max((r.cost_to_goal_q75 or m) - m, 0) for m, r in zip(med, rows, strict=True)]
        ax.bar(x, med, yerr=[lo, hi], capsize=3, color="tab:blue")
        for xi, r in zip(x, rows, strict=True):
            if r.failed:
                ax.annotate(
                    f"{r.failed}/{r.runs} failed", (xi, 0), rotation=90, va="bottom", ha="center", fontsize=7
                )
        ax.set_xticks(x, [r.policy for r in rows], rotation=45, ha="right", fontsize=8)
        ax.set_title(scenario)
        ax.set_ylabel("cost to goal ($, median, IQR)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(result: BenchmarkResult, out_dir: Path) -> dict[str, Path]:
    """Write ``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "benchmark.json",
        "markdown": out_dir / "benchmark.md",
        "plot": out_dir / "benchmark.png",
    }
    paths["json"].write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    paths["markdown"].write_text(to_markdown(result) + "\n", encoding="utf-8")
    plot(result, paths["plot"])
    return paths
