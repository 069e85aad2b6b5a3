"""``campaign-opt train``: train an RL policy, or warm-start a learning bandit on simulated
campaigns, and save it; or, with ``--from-log``, fit a policy on logged data, evaluate it off-policy
on a held-out part, track it in MLflow and register it (:mod:`experiments.offline`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.common import MAX_SEED, Number, fail, load_scenario_option, named_policy, print_json, writable_folder
from cli.common import stderr as console
from cli.evaluate import LOG_HELP, MAPPING_HELP, load_log, parse_estimators, target_policy, world


def train(
    policy: Annotated[
        str | None,
        typer.Option(
            help="RL algorithm (ppo, a2c) or a learning bandit to warm-start (e.g. budgeted_ts); default ppo."
            " With --from-log: offline_value (default) or any learning policy."
        ),
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="Built-in scenario name or path to a YAML file (default retail).")
    ] = None,
    timesteps: Annotated[
        int, typer.Option(help="Environment steps (campaign iterations) to train.", min=1)
    ] = 50_000,
    out: Annotated[
        Path | None, typer.Option(help="Folder to save the trained policy into (default runs/ppo).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.", min=0, max=MAX_SEED)] = 0,
    n_customers: Annotated[
        int | None, typer.Option(help="Train on a smaller population (goal and budget scaled).", min=100)
    ] = None,
    campaigns: Annotated[
        int, typer.Option(help="Bandits: simulated warm-start campaigns (training seeds).", min=1)
    ] = 3,
    from_log: Annotated[Path | None, typer.Option(help="Learn from a log instead: " + LOG_HELP)] = None,
    mapping: Annotated[str | None, typer.Option(help="--from-log file: " + MAPPING_HELP)] = None,
    holdout: Annotated[
        float,
        typer.Option(
            help="--from-log: share of rows held out for evaluation.", parser=Number(0, 1, above=True)
        ),
    ] = 0.5,
    campaign_seed: Annotated[
        int, typer.Option(help="--from-log campaign folder: the --seed it ran with.", min=0, max=MAX_SEED)
    ] = 0,
    estimators: Annotated[str, typer.Option(help="--from-log: OPE estimators.")] = "ips,snips,dr,switch_dr",
    bootstrap: Annotated[
        int, typer.Option(help="--from-log: bootstrap resamples.", min=2, max=100_000)
    ] = 500,
    register: Annotated[
        str | None,
        typer.Option(
            help="--from-log: register the policy as a new version of this model; the champion alias "
            "moves only when its DR lower bound beats the champion's DR estimate on the held-out rows."
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="--from-log: MLflow tracking URI (default MLFLOW_TRACKING_URI, then sqlite:///mlruns/mlflow.db)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="--from-log: print the result as JSON.")] = False,
) -> None:
    """Train an RL policy on Campaign-v0, or warm-start a bandit on simulated campaigns; save to --out.
    With --from-log: fit a policy on logged data, evaluate it off-policy on the held-out rows, log it
    to MLflow (and register it with --register)."""
    from policies.rl import ALGORITHMS, train_rl

    if from_log is not None:
        if holdout >= 1.0:
            raise fail(f"--holdout {holdout:g}: must be below 1 (some rows must be left to train on)")
        _from_log(
            from_log, policy or "offline_value", mapping, scenario, holdout, seed, campaign_seed, estimators,
            bootstrap, register, tracking_uri, out, as_json,
        )  # fmt: skip
        return
    policy = policy or "ppo"
    out = out if out is not None else Path("runs/ppo")
    scenario = scenario or "retail"
    sc = load_scenario_option(scenario)
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
    pol = named_policy(policy, Simulator(sc), seed, "--policy")
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


def _from_log(
    log: Path,
    policy: str,
    mapping: str | None,
    scenario: str | None,
    holdout: float,
    seed: int,
    campaign_seed: int,
    estimators: str,
    bootstrap: int,
    register: str | None,
    tracking_uri: str | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """``train --from-log``: fit, evaluate on the held-out rows, track, register."""
    from experiments.offline import format_table, track_and_register, train_from_log
    from experiments.ope import OPEConfig
    from experiments.records import RunnerError
    from experiments.tracking import resolve_tracking_uri
    from policies.registry import CATALOGUE

    names = parse_estimators(estimators)
    if "dr" not in names:
        names = (*names, "dr")  # the champion rule reads DR
    try:
        uri = resolve_tracking_uri(None, tracking_uri)
    except RunnerError as err:
        raise fail(f"--tracking-uri: {err}") from None
    data = load_log(log, mapping, scenario, campaign_seed, None, option="--from-log")
    if len(data) < 100:
        raise fail(f"--from-log {str(log)!r}: {len(data)} logged decisions, at least 100 are needed")
    sim, arms = world(data, scenario, log)
    entry = CATALOGUE.get(policy.partition(":")[0])
    if entry is not None and not entry.adaptive:
        raise fail(f"--policy {policy!r}: does not learn; use offline_value or a learning policy")
    pol = target_policy(policy, sim, seed)
    cfg = OPEConfig(estimators=names, n_bootstrap=bootstrap, seed=seed, reward_model="gbt")
    try:
        run = train_from_log(data, pol, arms, holdout, seed, cfg, label=policy)
    except ValueError as err:
        raise fail(f"--policy {policy!r}: cannot learn from this log ({err})") from None
    if out is not None:
        writable_folder("--out", out)
        pol.save(out)
    tracked = track_and_register(
        run, sim, uri, register=register, params={"log": data.source, "holdout": holdout, "seed": seed}
    )
    result = run.to_dict()
    result["mlflow"] = {"tracking_uri": uri, "run_id": tracked.run_id, "experiment": tracked.experiment}
    if tracked.registration is not None:
        from dataclasses import asdict

        result["registration"] = {"model": register, **asdict(tracked.registration)}
    if out is not None:
        result["saved"] = str(out)
    if as_json:
        print_json(result)
        return
    typer.echo(format_table(run.rows(), cfg.level))
    for name, (v, lo, hi) in run.differences.items():
        typer.echo(f"{policy} - {name} (DR, paired): {v:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    for w in run.learned.diagnostics.warnings:
        console.print(f"warning: {w}", highlight=False, markup=False)
    console.print(
        f"trained on {run.train_rows:,} rows, evaluated on {run.holdout_rows:,}; MLflow run {tracked.run_id} "
        f"({uri})",
        highlight=False,
        markup=False,
    )
    if tracked.registration is not None:
        console.print(f"{register}: {tracked.registration.reason}", highlight=False, markup=False)


_TRAIN_COLUMNS = (
    TextColumn("[bold]{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
)
