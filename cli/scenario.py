"""Scenarios on the command line: ``scenarios`` (the built-in list), ``scenario perturb`` (a new
world derived from one) and ``calibration`` (the Hillstrom scenario beside its data)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import MAX_SEED, fail, load_scenario_option, print_json

out = Console()


def scenarios(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the built-in scenarios with size, arms, default goal and default budget."""
    from simulators import build_arms, builtin_scenarios, load_scenario

    rows: list[dict[str, Any]] = []
    for name in builtin_scenarios():
        sc = load_scenario(name)
        arms = build_arms(sc)
        g = sc.default_goal
        rows.append(
            {
                "name": name,
                "customers": sc.population.size,
                "arms": len(arms),
                "channels": list(sc.channels),
                "contents": list(sc.contents),
                "offers": list(sc.offers),
                "goal_metric": g.metric,
                "goal_target": g.target,
                "budget": g.budget,
                "max_iterations": g.max_iterations,
                "customers_per_iteration": g.customers_per_iteration,
                "description": " ".join(sc.description.split()),
            }
        )
    if as_json:
        print_json(rows)
        return
    table = Table(title="Built-in scenarios")
    for col in ("name", "customers", "arms", "channels", "default goal", "budget", "iterations"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            f"{r['customers']:,}",
            str(r["arms"]),
            ", ".join(r["channels"]),
            f"{r['goal_target']:,.0f} {r['goal_metric']}",
            f"${r['budget']:,.0f}",
            f"{r['max_iterations']} x {r['customers_per_iteration']:,}",
        )
    out.print(table)


def calibration(
    scenario: Annotated[str, typer.Argument(help="Calibrated scenario: hillstrom.")] = "hillstrom",
    data: Annotated[Path, typer.Option(help="Path to hillstrom.csv.")] = Path("../shared/data/hillstrom.csv"),
    seeds: Annotated[int, typer.Option(help="Simulator seeds to average over.", min=1)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print the calibration table: real data beside the simulator, per arm and customer group."""
    if scenario != "hillstrom":
        raise fail(f"SCENARIO {scenario!r}: no calibration for it; calibrated scenarios: ['hillstrom']")
    if not data.is_file():
        raise fail(f"--data: data file {str(data)!r} not found; pass --data PATH to hillstrom.csv")
    from simulators.calibration import calibration_report, format_calibration

    try:
        rep = calibration_report(data, seeds=tuple(range(seeds)))
    except (OSError, ValueError, KeyError) as err:  # unreadable, not UTF-8, a bad row; no rows at all
        raise fail(f"--data {str(data)!r}: not the Hillstrom CSV ({type(err).__name__}: {err})") from None
    if as_json:
        print_json(rep.to_dict())
    else:
        sys.stdout.write(format_calibration(rep) + "\n")


scenario_app = typer.Typer(
    help="Scenario files: derive new worlds from a scenario.", no_args_is_help=True, rich_markup_mode=None
)


@scenario_app.command("perturb")
def scenario_perturb(
    name_or_path: Annotated[str, typer.Argument(help="Built-in scenario name or path to a YAML file.")],
    out_file: Annotated[Path, typer.Option("--out", help="The perturbed scenario's YAML file.")],
    strength: Annotated[
        float,
        typer.Option(help="Standard deviation of the log of each parameter's factor.", min=0.0, max=5.0),
    ] = 0.3,
    seed: Annotated[
        int,
        typer.Option(help="Seed of the random factors (the same seed, the same file).", min=0, max=MAX_SEED),
    ] = 0,
) -> None:
    """Write a scenario whose response parameters are moved at random (simulators/perturb.py):
    a world that differs from the simulator in ways a policy does not know. Costs, population
    and default goal are kept."""
    import numpy as np

    from simulators.perturb import perturb, write_scenario

    sc = load_scenario_option(name_or_path, "NAME_OR_PATH")
    world = perturb(sc, strength, np.random.default_rng(seed))
    world = world.model_copy(update={"name": f"{sc.name}_perturbed_{seed}"}) if strength > 0 else world
    try:
        path = write_scenario(world, out_file)
    except OSError as err:
        raise fail(f"--out {str(out_file)!r}: cannot write the file ({err})") from None
    out.print(f"wrote {path} (scenario {world.name!r}, strength {strength:g}, seed {seed})")
