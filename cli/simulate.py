"""``campaign-opt simulate``: run one campaign to its stop and print the report; the report's
table is shared with ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import (
    MAX_DOLLARS,
    MAX_SEED,
    Number,
    fail,
    load_scenario_option,
    named_policy,
    print_json,
    saved_policy,
    writable_folder,
)
from cli.common import stderr as console

out = Console()


def print_report(report: dict[str, Any]) -> None:
    def money(x: float | None) -> str:
        return "-" if x is None else f"${x:,.2f}"

    verdict = "[green]goal reached[/]" if report["goal_reached"] else "[red]goal not reached[/]"
    out.print(
        f"[bold]{report['scenario']}[/] / [bold]{report['policy']}[/] (seed {report['seed']}): "
        f"{verdict}, stopped by {report['stop_reason']} after {report['iterations']} iterations"
    )
    t = Table(show_header=False)
    t.add_column("metric")
    t.add_column("value", justify="right")
    target = report["goal_target"]
    rows = [
        ("goal", f"{target:,.0f} {report['goal_metric']} ({report['goal_progress']:.0%} reached)"),
        ("spend / budget", f"{money(report['spend'])} / {money(report['budget'])}"),
        ("cost to goal", money(report["cost_to_goal"])),
        ("sends", f"{report['sends']:,}"),
        (
            "sends by channel",
            ", ".join(f"{k} {v:,}" for k, v in report["sends_by_channel"].items()),
        ),
        (
            "spend by channel",
            ", ".join(f"{k} {money(v)}" for k, v in report["spend_by_channel"].items()),
        ),
        (
            "offer cost",
            ", ".join(f"{k} {money(v)}" for k, v in report["offer_cost_by_offer"].items()),
        ),
        ("delivered", f"{report['delivered']:,} ({report['delivery_rate']:.1%} of sends)"),
        ("opened", f"{report['opened']:,} ({report['open_rate']:.1%} of delivered)"),
        ("clicked", f"{report['clicked']:,} ({report['click_rate']:.1%} of opened)"),
        ("conversions", f"{report['conversions']:,} ({report['conversion_rate']:.2%} of sends)"),
        (
            "projected conversions",
            f"{report['conversions_projected']:,.1f} ({report['conversions_pending']:,.1f} still expected)",
        ),
        ("revenue", money(report["revenue"])),
        ("unsubscribed", f"{report['unsubscribed']:,}"),
        ("cost per conversion", money(report["cost_per_conversion"])),
        ("ROI", "-" if report["roi"] is None else f"{report['roi']:.2f}"),
        ("most contacts of one customer", f"{report['max_contacts_per_customer']:,}"),
        ("most spent on one customer", money(report["max_cost_per_customer"])),
    ]
    inc = report.get("incremental")
    if inc:
        rows.append(
            (
                "incremental conversions",
                f"{inc['incremental_conversions']:,.1f} (95% CI {inc['incremental_conversions_ci_low']:,.1f} "
                f"to {inc['incremental_conversions_ci_high']:,.1f}; holdout {inc['holdout_customers']:,.0f})",
            )
        )
        rows.append(
            (
                "incremental revenue",
                f"{money(inc['incremental_revenue'])} (95% CI {money(inc['incremental_revenue_ci_low'])} "
                f"to {money(inc['incremental_revenue_ci_high'])})",
            )
        )
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)


def _parse_caps(
    frequency_cap: str | None, channel_budget: list[str], suppression: Path | None
) -> dict[str, Any]:
    """The caps options of ``simulate`` as CampaignSpec fields (exit 2 with the reason when malformed)."""
    from agent.spec import FrequencyCap

    out: dict[str, Any] = {}
    if frequency_cap is not None:
        parts = frequency_cap.split("/")
        if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts):
            raise fail(
                f"--frequency-cap {frequency_cap!r}: expected K/W or K/W/GAP with whole numbers, e.g. 2/7"
            )
        k, w, *gap = (int(p) for p in parts)
        try:
            out["frequency_cap"] = FrequencyCap(
                max_contacts=k, window_iterations=w, min_gap=gap[0] if gap else 1
            )
        except ValueError as err:
            raise fail(f"--frequency-cap {frequency_cap!r}: {err}") from None
    budgets: dict[str, float] = {}
    for item in channel_budget:
        name, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = float("nan")
        if not sep or not name.strip() or not 0 < amount <= MAX_DOLLARS:
            raise fail(
                f"--channel-budget {item!r}: expected CHANNEL=DOLLARS with a positive finite amount "
                f"of at most {MAX_DOLLARS:g}, e.g. sms=50"
            )
        budgets[name.strip()] = amount
    if budgets:
        out["channel_budgets"] = budgets
    if suppression is not None:
        try:
            text = suppression.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = "file not found" if not suppression.is_file() else f"cannot read it as text ({err})"
            raise fail(f"--suppression {str(suppression)!r}: {reason}") from None
        lines = [s.strip() for s in text.splitlines() if s.strip()]
        bad = [s for s in lines if not s.isdigit()]
        if bad:
            raise fail(
                f"--suppression {str(suppression)!r}: not a customer id: {bad[0]!r} "
                "(one whole number per line)"
            )
        out["suppression"] = frozenset(int(s) for s in lines)
    return out


_SPEC_OPTIONS = {
    "goal": "--goal-conversions/--goal-revenue",
    "target": "--goal-conversions/--goal-revenue",
    "budget": "--budget",
    "max_iterations": "--max-iterations",
    "customers_per_iteration": "--customers-per-iteration",
    "max_cost_per_customer": "--max-cost-per-customer",
    "holdout": "--holdout",
    "frequency_cap": "--frequency-cap",
    "channel_budgets": "--channel-budget",
    "suppression": "--suppression",
    "max_offer_value": "--max-offer-value",
}
"""The ``simulate`` option that sets each campaign field (the others come from the scenario)."""


def _spec_error(field: str, message: str) -> str:
    """``message`` about campaign field ``field``, led by the option that sets it."""
    option = _SPEC_OPTIONS.get(field)
    return f"{option}: {message}" if option else message


def _make_channel(text: str, sim: Any) -> Any:
    """Parse ``--channel``: ``simulated``, ``file:FOLDER[:csv]`` or ``webhook:URL``."""
    import os

    from agent.channels import FileChannel, MirroredChannel, SimulatedChannel, WebhookChannel

    kind, _, arg = text.partition(":")
    primary = SimulatedChannel(sim)
    if kind == "simulated" and not arg:
        return primary
    if kind == "file" and arg:
        folder, _, fmt = arg.rpartition(":") if arg.endswith((":csv", ":jsonl")) else (arg, "", "jsonl")
        writable_folder("--channel file:FOLDER", Path(folder))
        return MirroredChannel(primary, [FileChannel(folder, sim.arms, fmt=fmt)])  # type: ignore[arg-type]
    if kind == "webhook" and arg:
        secret = os.environ.get("CAMPAIGN_OPT_WEBHOOK_SECRET", "")
        if not secret:
            raise fail("--channel webhook:URL needs the signing secret in $CAMPAIGN_OPT_WEBHOOK_SECRET")
        try:
            return MirroredChannel(primary, [WebhookChannel(arg, secret, sim.arms)])
        except ValueError as err:
            raise fail(f"--channel: {err}") from None
    raise fail(f"--channel {text!r}: use simulated, file:FOLDER[:csv] or webhook:URL")


def simulate(
    scenario: Annotated[str, typer.Option(help="Built-in scenario name or path to a YAML file.")] = "retail",
    policy: Annotated[
        str, typer.Option(help="A policy name (random, fixed:ARM, oracle, ...) or models:/NAME@champion.")
    ] = "oracle",
    seed: Annotated[int, typer.Option(help="Root seed: same seed, same campaign.", min=0, max=MAX_SEED)] = 0,
    goal_conversions: Annotated[
        float | None,
        typer.Option(help="Goal: this many attributed conversions.", parser=Number(0, above=True)),
    ] = None,
    goal_revenue: Annotated[
        float | None,
        typer.Option(help="Goal: this much attributed revenue.", parser=Number(0, above=True)),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Cost threshold in dollars.", parser=Number(0, MAX_DOLLARS, above=True)),
    ] = None,
    max_iterations: Annotated[
        int | None, typer.Option(help="Most iterations to run.", min=1, max=10_000)
    ] = None,
    customers_per_iteration: Annotated[
        int | None, typer.Option(help="Candidates per iteration.", min=1)
    ] = None,
    max_cost_per_customer: Annotated[
        float | None,
        typer.Option(
            help="Most dollars spent or reserved on one customer.", parser=Number(0, MAX_DOLLARS, above=True)
        ),
    ] = None,
    holdout: Annotated[
        float,
        typer.Option(
            help="Share of the audience never contacted (0 to 0.5), for incrementality.",
            parser=Number(0, 0.5),
        ),
    ] = 0.0,
    frequency_cap: Annotated[
        str | None,
        typer.Option(
            help="K/W[/GAP]: at most K contacts per customer within W iterations, at least GAP "
            "iterations between two contacts (default 1)."
        ),
    ] = None,
    channel_budget: Annotated[
        list[str] | None,
        typer.Option(help="CHANNEL=DOLLARS: most spent or reserved on a channel (repeatable)."),
    ] = None,
    suppression: Annotated[
        Path | None, typer.Option(help="File of customer ids never to contact (one per line).")
    ] = None,
    policy_path: Annotated[
        Path | None, typer.Option(help="Run a saved policy (a folder from `train` or Policy.save).")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Also save the report plot (PNG) here.")] = None,
    max_offer_value: Annotated[
        float | None,
        typer.Option(
            help="Most an offer may cost on redemption; arms above it are left out.",
            parser=Number(0, MAX_DOLLARS),
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and price the first iteration, send nothing, exit.")
    ] = False,
    forecast: Annotated[
        int | None,
        typer.Option(
            help="Forecast from N simulated campaigns (cost to goal, chance to reach it), exit.", min=1
        ),
    ] = None,
    export_log: Annotated[
        Path | None,
        typer.Option(help="Write decisions.parquet and events.parquet into this folder (off-policy data)."),
    ] = None,
    channel: Annotated[
        str,
        typer.Option(
            help="simulated, file:FOLDER[:csv] or webhook:URL. With file or webhook every batch "
            "also goes to that sender while the simulator answers (a rehearsal of a real sender); "
            "the webhook secret comes from $CAMPAIGN_OPT_WEBHOOK_SECRET."
        ),
    ] = "simulated",
    projected_stop: Annotated[
        bool,
        typer.Option(
            "--projected-stop/--observed-stop",
            help="Count conversions still expected from recent sends toward the goal (default), "
            "or only those observed.",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run one campaign to its stop and print the report."""
    from pydantic import ValidationError

    from agent import Campaign, CampaignError, CampaignSpec
    from simulators import Simulator

    if goal_conversions is not None and goal_revenue is not None:
        raise fail("give at most one of --goal-conversions and --goal-revenue")
    sc = load_scenario_option(scenario)
    caps = _parse_caps(frequency_cap, channel_budget or [], suppression)
    try:
        spec = CampaignSpec.from_scenario(
            sc,
            goal_metric="revenue"
            if goal_revenue is not None
            else ("conversions" if goal_conversions is not None else None),
            goal_target=goal_revenue if goal_revenue is not None else goal_conversions,
            budget=budget,
            max_iterations=max_iterations,
            customers_per_iteration=customers_per_iteration,
            max_cost_per_customer=max_cost_per_customer,
            holdout=holdout,
            max_offer_value=max_offer_value,
            **caps,
        ).model_copy(update={"stop_on_projected": projected_stop})
    except ValidationError as err:
        raise fail(
            "; ".join(
                _spec_error(str(e["loc"][0]), f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                if e["loc"]
                else e["msg"]  # a rule across fields
                for e in err.errors()
            )
        ) from None
    sim = Simulator(sc)
    if policy_path is not None:
        pol = saved_policy(policy_path, sim, sc)
        policy = pol.name
    else:
        pol = named_policy(policy, sim, seed, "--policy")
    sender = _make_channel(channel, sim)
    if export_log is not None:
        writable_folder("--export-log", export_log)
    if plot is not None:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = sorted(FigureCanvasBase.get_supported_filetypes())
        if plot.suffix.lower().removeprefix(".") not in formats:
            raise fail(f"--plot {str(plot)!r}: the file name must end in an image format, one of {formats}")
        writable_folder("--plot", plot.parent)
    try:
        campaign = Campaign(spec, sim, pol, seed=seed, scenario_name=sc.name, channel=sender)
    except CampaignError as err:
        field = str(err).replace(":", " ").split()[0]
        raise fail(_spec_error(field, str(err))) from None

    if dry_run or forecast is not None:
        from dataclasses import asdict

        data = asdict(campaign.dry_run()) if dry_run else asdict(campaign.forecast(runs=forecast or 1))
        if as_json:
            print_json(data)
        else:
            title = "Dry run of the first iteration (nothing sent)" if dry_run else "Forecast before launch"
            table = Table(title=title, show_header=False)
            for key, value in data.items():
                shown = (
                    ", ".join(f"{k} {v:,}" for k, v in value.items())
                    if isinstance(value, dict)
                    else (
                        "-" if value is None else f"{value:,.2f}" if isinstance(value, float) else str(value)
                    )
                )
                table.add_row(key, shown)
            out.print(table)
        return

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("goal {task.fields[goal]:.0%}  spend ${task.fields[spend]:,.0f}"),
        TimeElapsedColumn(),
    )
    with Progress(
        *columns, console=console, transient=True, disable=as_json or not console.is_terminal
    ) as bar:
        task = bar.add_task(f"{sc.name}/{policy}", total=spec.max_iterations, goal=0.0, spend=0.0)
        report = campaign.run(
            on_iteration=lambda r: bar.update(task, advance=1, goal=r.goal_progress, spend=r.spend_total)
        )
    data = report.to_dict()
    if as_json:
        print_json(data)
    else:
        print_report(data)
    if plot is not None:
        from agent.plots import plot_report

        console.print(f"plot written to {plot_report(report, plot)}")
    if export_log is not None:
        from agent.export import export_logs

        paths = export_logs(campaign, export_log)
        console.print(f"decision log written to {paths['decisions']} and {paths['events']}")
