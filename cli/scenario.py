"""Scenarios on the command line: ``scenarios`` (the built-in list), ``scenario perturb`` (a new
world derived from one), ``scenario fit`` (a world fitted to a randomized log) and
``calibration`` (the Hillstrom scenario beside its data)."""

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
    help="Scenario files: derive new worlds from a scenario, or fit one to a log.",
    no_args_is_help=True,
    rich_markup_mode=None,
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


def _pairs(option: str, items: list[str]) -> dict[str, str]:
    """``NAME=COLUMN`` items as a dict, or exit 2 naming ``option``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise fail(f"{option} {item!r}: write NAME=COLUMN")
        out[name.strip()] = column.strip()
    return out


@scenario_app.command("fit")
def scenario_fit(
    log: Annotated[
        Path, typer.Option("--log", help="The randomized log: CSV or Parquet, one row per customer.")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="The fitted scenario's YAML file.")],
    audience: Annotated[
        Path | None,
        typer.Option(
            help="Your customer file (the log's feature columns): the scenario's customers follow it."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="A YAML file of column names (the fields of simulators.fit.LogMapping)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The scenario's name (default: fitted).")] = None,
    arm: Annotated[str | None, typer.Option(help="The arm column (default: segment).")] = None,
    channel: Annotated[
        str | None, typer.Option(help="A channel column (with --content, --offer; no --arm).")
    ] = None,
    content: Annotated[str | None, typer.Option(help="A content column.")] = None,
    offer: Annotated[str | None, typer.Option(help="An offer column.")] = None,
    no_contact: Annotated[
        list[str] | None, typer.Option(help="A value meaning 'not contacted' (repeat for several).")
    ] = None,
    visit: Annotated[str | None, typer.Option(help="The visit (or click) column, 0/1.")] = None,
    conversion: Annotated[str | None, typer.Option(help="The conversion column, 0/1.")] = None,
    spend: Annotated[str | None, typer.Option(help="The spend (revenue) column, dollars.")] = None,
    segment: Annotated[
        str | None, typer.Option(help="The lifecycle segment column (default: newbie).")
    ] = None,
    recency: Annotated[
        str | None, typer.Option(help="Months since the last purchase (default: recency).")
    ] = None,
    monetary: Annotated[str | None, typer.Option(help="Dollars spent last year (default: history).")] = None,
    product_line: Annotated[
        list[str] | None, typer.Option(help="LINE=COLUMN, a 0/1 bought-from-this-line column (repeat).")
    ] = None,
    attribute: Annotated[
        list[str] | None, typer.Option(help="NAME=COLUMN, a categorical feature column (repeat).")
    ] = None,
    rounds: Annotated[
        int,
        typer.Option(
            help="Fits, each from the last optimum, until chi2 moves by less than 1% (at most this many).",
            min=1,
            max=10,
        ),
    ] = 1,
    max_nfev: Annotated[int, typer.Option(help="Optimizer iterations per round.", min=1, max=1000)] = 60,
    customers: Annotated[
        int, typer.Option(help="Simulated customers the fit averages over.", min=500, max=1_000_000)
    ] = 32_000,
    seeds: Annotated[int, typer.Option(help="Simulator seeds of the report.", min=1, max=20)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Fit a simulated world to a randomized log of channel, content and offer arms and write it
    as a scenario YAML (simulators/fit.py). Column defaults are the Hillstrom file's; a mapping
    file or the options name others. Prints the log beside the fitted simulator per arm and
    customer group, with a tolerance per row."""
    from simulators.fit import LogError, LogMapping, fit_log_file, format_report, format_tolerance

    base = LogMapping()
    if mapping is not None:
        try:
            base = LogMapping.from_file(mapping)
        except LogError as err:
            raise fail(f"--mapping: {err}") from None
    given: dict[str, object] = {
        "name": name,
        "arm": arm,
        "channel": channel,
        "content": content,
        "offer": offer,
        "visit": visit,
        "conversion": conversion,
        "spend": spend,
        "segment": segment,
        "recency": recency,
        "monetary": monetary,
        "no_contact": no_contact or None,
        "product_lines": _pairs("--product-line", product_line) if product_line else None,
        "attributes": _pairs("--attribute", attribute) if attribute else None,
    }
    updates = {k: v for k, v in given.items() if v is not None}
    if channel is not None and arm is None:
        updates["arm"] = None
    try:
        the_mapping = LogMapping.model_validate({**base.model_dump(include=base.model_fields_set), **updates})
    except ValueError as err:
        raise fail(f"--name: {' '.join(str(err).split())}") from None
    if not log.is_file():
        raise fail(f"--log: file {str(log)!r} not found")
    if audience is not None and not audience.is_file():
        raise fail(f"--audience: file {str(audience)!r} not found")
    try:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with out_file.open("a", encoding="utf-8"):
            pass
    except OSError as err:
        raise fail(f"--out {str(out_file)!r}: cannot write the file ({err.strerror or err})") from None

    def note(line: str) -> None:
        if not as_json:
            print(line, file=sys.stderr)

    try:
        result = fit_log_file(
            log,
            the_mapping,
            audience=audience,
            rounds=rounds,
            max_nfev=max_nfev,
            n_customers=customers,
            seeds=tuple(range(seeds)),
            progress=note,
        )
    except (LogError, KeyError) as err:
        message = " ".join(str(err).split())
        option = "--audience" if audience is not None and str(audience) in message else "--log"
        raise fail(f"{option}: {message}") from None
    out_file.write_text(result.yaml, encoding="utf-8")
    if as_json:
        print_json({**result.to_dict(), "out": str(out_file)})
        return
    sys.stdout.write(format_report(result.report) + "\n\n" + format_tolerance(result.report) + "\n")
    for line in result.notes:
        print(f"note: {line}", file=sys.stderr)
    print(
        f"wrote {out_file} (scenario {result.scenario['name']!r}, chi2 {result.fit.chi2:.1f})",
        file=sys.stderr,
    )
