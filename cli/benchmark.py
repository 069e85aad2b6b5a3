"""``campaign-opt benchmark``: policies against the yardsticks over seeds (experiments/benchmark.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.common import fail, load_scenario_option, named_policy, print_json, saved_policy, writable_folder
from cli.common import stderr as console

out = Console()


def benchmark(
    scenarios: Annotated[str, typer.Option(help="Comma-separated scenario names or YAML paths.")] = "retail",
    policies: Annotated[str, typer.Option(help="Comma-separated policy names.")] = "oracle,random",
    seeds: Annotated[int, typer.Option(help="Seeds per scenario and policy.", min=1)] = 3,
    policy_path: Annotated[
        Path | None, typer.Option(help="A saved policy folder, benchmarked under the name 'path'.")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for JSON, markdown and plot.")] = Path(
        "runs/benchmark"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compare policies: median and IQR of cost to goal, goal-reached rate, ratio to the oracle."""
    from experiments.benchmark import run_benchmark, to_markdown, write_outputs
    from simulators import Simulator

    scenario_list = [s.strip() for s in scenarios.split(",") if s.strip()]
    policy_list = [p.strip() for p in policies.split(",") if p.strip()]
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
                named_policy(pol, sim, None, "--policies")
        if policy_path is not None:
            saved_policy(policy_path, sim, sc)
    writable_folder("--out", out_dir)
    total = len(scenario_list) * len(policy_list) * seeds
    with Progress(
        TextColumn("[bold]benchmark"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as bar:
        task = bar.add_task("runs", total=total, last="")
        result = run_benchmark(
            scenario_list,
            policy_list,
            seeds,
            policy_path=policy_path,
            on_run=lambda r: bar.update(task, advance=1, last=f"{r.scenario}/{r.policy} seed {r.seed}"),
        )
    paths = write_outputs(result, out_dir)
    if as_json:
        print_json(result.to_dict())
    else:
        out.print(to_markdown(result), highlight=False)
        console.print(f"wrote {paths['json']}, {paths['markdown']} and {paths['plot']}")
