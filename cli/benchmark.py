"""``campaign-opt benchmark``: policies against the yardsticks over seeds (experiments/benchmark.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.common import (
    fail,
    load_scenario_option,
    named_policy,
    print_json,
    runs_bar,
    saved_policy,
    writable_folder,
)
from cli.common import stderr as console

out = Console()


def benchmark(
    scenarios: Annotated[str, typer.Option(help="Comma-separated scenario names or YAML paths.")] = "retail",
    policies: Annotated[
        str, typer.Option(help="Comma-separated policy names; 'all' is the whole catalogue.")
    ] = "oracle,random",
    seeds: Annotated[int, typer.Option(help="Seeds per scenario and policy.", min=1)] = 3,
    policy_path: Annotated[
        Path | None, typer.Option(help="A saved policy folder, benchmarked under the name 'path'.")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for JSON, markdown and plot.")] = Path(
        "runs/benchmark"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    track: Annotated[
        str,
        typer.Option(
            help="cold-start (no pretraining), pretrained (trained on the scenario's simulator, "
            "other seeds) or sim-to-real (trained on the scenario, evaluated on perturbed worlds)."
        ),
    ] = "cold-start",
    train_campaigns: Annotated[
        int, typer.Option(help="Pretraining campaigns per learner (pretrained, sim-to-real).", min=0, max=100)
    ] = 2,
    perturbations: Annotated[
        int, typer.Option(help="Perturbed worlds of the sim-to-real track.", min=1, max=20)
    ] = 3,
    ladder: Annotated[
        bool,
        typer.Option(
            "--ladder",
            help="Run the diagnostic ladder of --learner instead of --policies: oracle, feature_oracle, "
            "estimation, exploration, pacing.",
        ),
    ] = False,
    learner: Annotated[str, typer.Option(help="The learner the ladder diagnoses.")] = "funnel_ts",
) -> None:
    """Compare policies: median and IQR of cost to goal, goal-reached rate, ratio to the oracle."""
    from experiments.benchmark import TRACKS, expand_policies, run_benchmark, to_markdown, write_outputs
    from simulators import Simulator

    if track not in TRACKS:
        raise fail(f"--track: {track!r} is not one of {', '.join(TRACKS)}")
    scenario_list = [s.strip() for s in scenarios.split(",") if s.strip()]
    policy_list = expand_policies([p.strip() for p in policies.split(",") if p.strip()])
    if ladder:
        if learner.partition(":")[0] != "funnel_ts":
            raise fail(f"--learner: the ladder diagnoses funnel_ts (with settings), not {learner!r}")
        policy_list = [learner]
    if policy_path is not None and "path" not in policy_list:
        policy_list.append("path")
    if not scenario_list or not policy_list:
        raise fail("--scenarios/--policies: give at least one scenario and one policy")
    if policy_path is None and "path" in policy_list:
        raise fail("--policies: 'path' is the policy of --policy-path, which is not given")
    for name in scenario_list:  # every name before the first (long) run
        sc = load_scenario_option(name, "--scenarios")
        sim = Simulator(sc, n_customers=1)
        for pol in policy_list:
            if pol != "path":
                named_policy(pol, sim, None, "--learner" if ladder else "--policies")
        if policy_path is not None:
            saved_policy(policy_path, sim, sc)
    writable_folder("--out", out_dir)
    if ladder:
        _ladder(scenario_list, seeds, learner, out_dir, as_json)
        return
    worlds = perturbations if track == "sim-to-real" else 1
    total = len(scenario_list) * len(policy_list) * seeds * worlds
    with runs_bar("benchmark", as_json) as bar:
        task = bar.add_task("runs", total=total, last="")
        result = run_benchmark(
            scenario_list,
            policy_list,
            seeds,
            policy_path=policy_path,
            on_run=lambda r: bar.update(task, advance=1, last=f"{r.scenario}/{r.policy} seed {r.seed}"),
            track=track,
            train_campaigns=train_campaigns,
            perturbations=perturbations,
            on_train=lambda sc, pol, i, _r: bar.update(
                task, last=f"training {pol} on {sc}: campaign {i + 1}"
            ),
        )
    paths = write_outputs(result, out_dir)
    if as_json:
        print_json(result.to_dict())
    else:
        out.print(to_markdown(result), highlight=False)
        console.print(f"wrote {paths['json']}, {paths['markdown']} and {paths['plot']}")


def _ladder(scenarios: list[str], seeds: int, learner: str, out_dir: Path, as_json: bool) -> None:
    """Run and print the ladder; writes ``benchmark.*`` and ``ladder.json`` into ``out_dir``."""
    import json

    from experiments.benchmark import write_outputs
    from experiments.ladder import RUNGS, ladder_steps, run_ladder

    with runs_bar("ladder", as_json) as bar:
        task = bar.add_task("runs", total=len(scenarios) * len(RUNGS) * seeds, last="")
        result = run_ladder(
            scenarios,
            seeds,
            learner=learner,
            on_run=lambda r: bar.update(task, advance=1, last=f"{r.scenario}/{r.policy} seed {r.seed}"),
            on_teach=lambda sc, i, _r: bar.update(task, last=f"fitting {learner} on {sc}: campaign {i + 1}"),
        )
    paths = write_outputs(result, out_dir)
    steps = ladder_steps(result)
    (out_dir / "ladder.json").write_text(json.dumps(steps, indent=2), encoding="utf-8")
    if as_json:
        print_json({"ladder": steps, **result.to_dict()})
        return
    for st in steps:
        cost = "-" if st["cost_to_goal_median"] is None else f"${st['cost_to_goal_median']:,.0f}"
        ratio = "-" if st["ratio_to_oracle"] is None else f"{st['ratio_to_oracle']:.2f}x"
        out.print(
            f"{st['scenario']:<12} {st['rung']:<15} goal {st['goal_reached_rate']:.0%} cost {cost} "
            f"ratio {ratio} conversions {st['conversions_median']:,.0f}",
            highlight=False,
        )
    console.print(
        f"wrote {paths['json']}, {paths['markdown']}, {paths['plot']} and {out_dir / 'ladder.json'}"
    )
