"""``campaign-opt``: the command line (typer). Every command has ``--help`` and ``--json``; bad
input exits with code 2 and one line naming the option (see :mod:`experiments.cli_common`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from experiments.cli_common import MAX_DOLLARS, MAX_SEED, Number, fail, writable_folder
from experiments.cli_common import stderr as console
from experiments.experiment_cli import experiment_app

if TYPE_CHECKING:
    from policies import Policy
    from simulators import Scenario

app = typer.Typer(
    name="campaign-opt",
    help="Autonomous campaign optimizer: simulate campaigns, calibrate scenarios, compare policies.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help text is plain text ("K/W[/GAP]" is not markup); errors are one line
)
app.add_typer(experiment_app, name="experiment")
out = Console()


def _scenario(name: str, option: str = "--scenario") -> Scenario:
    """Load a built-in scenario or a YAML file, or exit 2 naming ``option``."""
    from simulators import ScenarioError, load_scenario

    try:
        return load_scenario(name)
    except ScenarioError as err:
        raise fail(f"{option}: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise fail(f"{option} {name!r}: cannot read the file as UTF-8 YAML ({err})") from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=float) + "\n")


@app.command()
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
        _print_json(rows)
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


def _print_report(report: dict[str, Any]) -> None:
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


def _named_policy(name: str, sim: Any, seed: int | None, option: str) -> Policy:
    """The policy ``name`` (a policy name or ``models:/NAME@ALIAS``) for ``sim``, or exit 2."""
    from policies import UnknownPolicyError, make_policy

    try:
        if name.startswith("models:/"):
            from serving.registry import resolve_policy

            return resolve_policy(name, sim, seed=seed)
        return make_policy(name, sim, seed=seed)
    except UnknownPolicyError as err:
        raise fail(f"{option} {name!r}: {err}") from None


def _saved_policy(folder: Path, sim: Any, sc: Scenario) -> Policy:
    """The policy saved in ``folder`` (``--policy-path``) for ``sim``, once it could decide for a
    small campaign of ``sc``; or exit 2."""
    from agent import Campaign, CampaignSpec
    from policies import UnknownPolicyError, load_policy
    from simulators import Simulator

    if not (folder / "policy.json").is_file():
        raise fail(f"--policy-path {str(folder)!r}: no saved policy there (expected policy.json)")
    try:
        pol = load_policy(folder, sim)
    except UnknownPolicyError as err:
        raise fail(f"--policy-path: {err}") from None
    n = 200
    trial = CampaignSpec.from_scenario(sc, max_iterations=1, customers_per_iteration=n)
    try:  # a policy saved for another scenario's arms or features fails on its first decision
        Campaign(trial, Simulator(sc, n_customers=n), pol, seed=0).dry_run()
    except (ValueError, IndexError) as err:
        raise fail(
            f"--policy-path {str(folder)!r}: the saved {pol.name} policy cannot decide for scenario "
            f"{sc.name!r} ({err})"
        ) from None
    return pol


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


@app.command()
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
    sc = _scenario(scenario)
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
        pol = _saved_policy(policy_path, sim, sc)
        policy = pol.name
    else:
        pol = _named_policy(policy, sim, seed, "--policy")
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
            _print_json(data)
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
        _print_json(data)
    else:
        _print_report(data)
    if plot is not None:
        from agent.plots import plot_report

        console.print(f"plot written to {plot_report(report, plot)}")
    if export_log is not None:
        from agent.export import export_logs

        paths = export_logs(campaign, export_log)
        console.print(f"decision log written to {paths['decisions']} and {paths['events']}")


@app.command()
def train(
    policy: Annotated[
        str,
        typer.Option(help="RL algorithm (ppo, a2c) or a learning bandit to warm-start (e.g. budgeted_ts)."),
    ] = "ppo",
    scenario: Annotated[str, typer.Option(help="Built-in scenario name or path to a YAML file.")] = "retail",
    timesteps: Annotated[
        int, typer.Option(help="Environment steps (campaign iterations) to train.", min=1)
    ] = 50_000,
    out: Annotated[Path, typer.Option(help="Folder to save the trained policy into.")] = Path("runs/ppo"),
    seed: Annotated[int, typer.Option(help="Training seed.", min=0, max=MAX_SEED)] = 0,
    n_customers: Annotated[
        int | None, typer.Option(help="Train on a smaller population (goal and budget scaled).", min=100)
    ] = None,
    campaigns: Annotated[
        int, typer.Option(help="Bandits: simulated warm-start campaigns (training seeds).", min=1)
    ] = 3,
) -> None:
    """Train an RL policy on Campaign-v0, or warm-start a bandit on simulated campaigns; save to --out."""
    from policies.rl import ALGORITHMS, train_rl

    sc = _scenario(scenario)
    if n_customers is not None and n_customers > sc.population.size:
        raise fail(f"--n-customers {n_customers}: at most the scenario's population, {sc.population.size}")
    if policy not in ALGORITHMS:
        _warm_start(policy, sc, campaigns, out, seed)
        return
    writable_folder("--out", out)
    trained = train_rl(policy, scenario, timesteps, out, seed, n_customers=n_customers, progress=True)
    console.print(
        f"trained {trained.name} saved to {out}; run it with: campaign-opt simulate --policy-path {out}"
    )


def _warm_start(policy: str, sc: Any, campaigns: int, out: Path, seed: int) -> None:
    """Run ``campaigns`` simulated campaigns of ``sc`` with one learning bandit, then save it.

    Training seeds are ``1_000_000 + 1_000 * seed + i``, far from the benchmark's seeds 0..K-1.
    """
    from agent import CampaignReport
    from experiments.pretrain import PRETRAINABLE, pretrain
    from simulators import Simulator

    if policy.partition(":")[0] not in PRETRAINABLE:
        raise fail(
            f"--policy: cannot train {policy!r}; trainable policies: RL ['a2c', 'ppo'] or a learning bandit "
            f"{list(PRETRAINABLE)} (pretrained on simulated campaigns)"
        )
    pol = _named_policy(policy, Simulator(sc), seed, "--policy")
    writable_folder("--out", out)
    with Progress(*_TRAIN_COLUMNS, console=console, transient=True) as bar:
        task = bar.add_task(f"pretrain {policy}", total=campaigns)

        def progress(i: int, train_seed: int, rep: CampaignReport) -> None:
            console.print(
                f"campaign {i + 1}/{campaigns} (seed {train_seed}): goal reached {rep.goal_reached}, "
                f"spend ${rep.spend:,.0f}"
            )
            bar.update(task, advance=1)

        pretrain(pol, sc, campaigns, seed, on_campaign=progress)
    pol.save(out)
    console.print(
        f"trained {pol.name} saved to {out}; run it with: campaign-opt simulate --policy-path {out}"
    )


_TRAIN_COLUMNS = (
    TextColumn("[bold]{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
)


@app.command()
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
        _print_json(rep.to_dict())
    else:
        sys.stdout.write(format_calibration(rep) + "\n")


@app.command()
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
        sc = _scenario(name, "--scenarios")
        sim = Simulator(sc, n_customers=1)
        for pol in policy_list:
            if pol != "path":
                _named_policy(pol, sim, None, "--policies")
        if policy_path is not None:
            _saved_policy(policy_path, sim, sc)
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
        _print_json(result.to_dict())
    else:
        out.print(to_markdown(result), highlight=False)
        console.print(f"wrote {paths['json']}, {paths['markdown']} and {paths['plot']}")


keys_app = typer.Typer(help="API keys of campaign owners.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    owner: Annotated[str, typer.Option(help="The owner's name (created when new).")],
) -> None:
    """Create an API key for an owner and print it once (only its hash is stored)."""
    from serving.service import Service, ServiceError
    from serving.settings import settings_from_env

    svc = Service(settings_from_env())
    svc.migrate()
    try:
        key = svc.create_key(owner)
    except ServiceError as err:
        raise fail(err.message) from None
    sys.stdout.write(key + "\n")
    console.print(f"key for owner {owner!r}: store it now, it is not shown again", style="dim")


@keys_app.command("list")
def keys_list() -> None:
    """List every key as JSON lines: id, owner, prefix, created_at, revoked_at (never the key)."""
    from serving.service import Service
    from serving.settings import settings_from_env

    svc = Service(settings_from_env())
    svc.migrate()
    for row in svc.list_keys():
        sys.stdout.write(json.dumps(row, default=str) + "\n")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `keys list`).", min=1)],
) -> None:
    """Revoke a key: it stops working at once on every server sharing the database."""
    from serving.service import Service, ServiceError
    from serving.settings import settings_from_env

    svc = Service(settings_from_env())
    svc.migrate()
    try:
        svc.revoke_key(key_id)
    except ServiceError as err:
        raise fail(err.message) from None
    console.print(f"key {key_id} revoked", style="dim")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the live runner in this process.")
    ] = True,
) -> None:
    """Serve the campaign owners' API (docs at /docs) and run live campaigns.

    The database is ``$DATABASE_URL`` (default: an SQLite file under ``$DATA_DIR``, ``data/``).
    """
    import dataclasses
    import socket

    import uvicorn

    from serving.app import create_app
    from serving.settings import settings_from_env

    try:  # a bad host or a busy port, as one line before the app starts
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except (OSError, UnicodeError) as err:
        raise fail(f"--host/--port {host}:{port}: cannot listen there ({err})") from None
    settings = dataclasses.replace(settings_from_env(), run_worker=worker)
    console.print(f"serving on http://{host}:{port} (docs at /docs), database {settings.database_url}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Data folder (database, policies, plots).")] = Path("data"),
    train_campaigns: Annotated[
        int, typer.Option(help="Warm-start campaigns when the default policy is not saved yet.", min=1)
    ] = 3,
) -> None:
    """The main job (`make run`): train if needed, serve, run the retail campaign over HTTP, report."""
    from serving.demo import run_demo

    writable_folder("--data-dir", data_dir)
    try:
        run_demo(data_dir, console, _print_report, train_campaigns=train_campaigns)
    except RuntimeError as err:
        raise fail(str(err)) from None


scenario_app = typer.Typer(
    help="Scenario files: derive new worlds from a scenario.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(scenario_app, name="scenario")


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

    sc = _scenario(name_or_path, "NAME_OR_PATH")
    world = perturb(sc, strength, np.random.default_rng(seed))
    world = world.model_copy(update={"name": f"{sc.name}_perturbed_{seed}"}) if strength > 0 else world
    try:
        path = write_scenario(world, out_file)
    except OSError as err:
        raise fail(f"--out {str(out_file)!r}: cannot write the file ({err})") from None
    out.print(f"wrote {path} (scenario {world.name!r}, strength {strength:g}, seed {seed})")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
