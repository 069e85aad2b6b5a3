"""``campaign-opt evaluate``: off-policy evaluation of a policy on a logged campaign or an external
randomized experiment (IPS, SNIPS, DR, Switch-DR with bootstrap intervals; replay on request).

Shared with ``campaign-opt train --from-log``: reading ``--log`` (:func:`load_log`) and the
estimator list (:func:`parse_estimators`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import MAX_DOLLARS, MAX_SEED, Number, fail, load_scenario_option, print_json
from cli.common import stderr as console

if TYPE_CHECKING:
    from experiments.logs import LoggedData
    from experiments.ope import Estimator, RewardModelKind

LOG_HELP = (
    "A folder written by `simulate --export-log` (decisions.parquet, events.parquet), or a CSV or "
    "Parquet file of a randomized experiment (with --mapping)."
)
MAPPING_HELP = "How a file's columns map to features, arm, outcomes and propensity: hillstrom or a YAML file."
SCENARIO_HELP = (
    "Scenario of the log's arms (and, for a campaign folder, of its world); default: the built-in "
    "scenario with the log's arms, retail for a campaign folder."
)


def parse_estimators(text: str) -> tuple[Estimator, ...]:
    """``ips,snips,...`` as estimator names, or exit 2 naming ``--estimators``."""
    from experiments.ope import ESTIMATORS

    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in ESTIMATORS]
    if unknown or not names:
        raise fail(
            f"--estimators {text!r}: unknown {unknown or 'empty list'}; allowed: {','.join(ESTIMATORS)}"
        )
    return tuple(n for n in ESTIMATORS if n in names)


def load_log(
    log: Path,
    mapping: str | None,
    scenario: str | None,
    campaign_seed: int,
    n_customers: int | None,
    option: str = "--log",
) -> LoggedData:
    """The log behind ``option`` (``--log``; ``train``'s ``--from-log``): a campaign folder or an
    external file, or exit 2 naming the option."""
    from experiments.logs import LogError, campaign_sim_seed, load_campaign_log, load_external, read_mapping

    if not log.exists():
        raise fail(f"{option} {str(log)!r}: no such file or folder")
    try:
        if log.is_dir():
            sc = load_scenario_option(scenario or "retail")
            return load_campaign_log(log, sc, campaign_sim_seed(campaign_seed), n_customers)
        if mapping is None:
            raise fail(
                f"--mapping: needed for the file {str(log)!r} (hillstrom, or a YAML file naming the action, "
                "feature, outcome and propensity columns)"
            )
        try:
            m = read_mapping(mapping)
        except LogError as err:
            raise fail(f"--mapping: {err}") from None
        return load_external(log, m)
    except LogError as err:
        raise fail(f"{option}: {err}") from None


def world(data: LoggedData, scenario: str | None, log: Path) -> tuple[Any, Any]:
    """A simulator with the log's arms (policies read its arm table) and that table, or exit 2."""
    from experiments.offline import world_for

    try:
        return world_for(data, scenario if scenario or not log.is_dir() else "retail")
    except ValueError as err:
        raise fail(f"--scenario: {err}") from None


def target_policy(name: str, sim: Any, seed: int, option: str = "--policy") -> Any:
    """The policy to evaluate (a catalogue name, a folder holding ``policy.json``, ``models:/...``;
    :func:`serving.registry.resolve_policy` for all but the folder), or exit 2. Yardsticks
    (they read the simulator's ground truth, which a log does not have) are refused."""
    from policies import UnknownPolicyError
    from policies.registry import CATALOGUE, load_policy
    from serving.registry import RegistryError, resolve_policy

    entry = CATALOGUE.get(name.partition(":")[0])
    if entry is not None and entry.kind == "yardstick":
        raise fail(
            f"{option} {name!r}: a yardstick reads the simulator's ground truth, which a log does not have"
        )
    try:
        if (Path(name) / "policy.json").is_file():
            return load_policy(name, sim)
        return resolve_policy(name, sim, seed=seed)
    except (UnknownPolicyError, RegistryError) as err:
        raise fail(f"{option} {name!r}: {err}") from None


def evaluate(
    log: Annotated[Path, typer.Option(help=LOG_HELP)],
    policy: Annotated[
        str,
        typer.Option(
            help="Policy to evaluate: a catalogue name (e.g. fixed:ARM, lin_ts), offline_value, a folder "
            "holding policy.json, or models:/NAME@ALIAS."
        ),
    ],
    mapping: Annotated[str | None, typer.Option(help=MAPPING_HELP)] = None,
    scenario: Annotated[str | None, typer.Option(help=SCENARIO_HELP)] = None,
    campaign_seed: Annotated[
        int, typer.Option(help="Campaign folder: the --seed the campaign ran with.", min=0, max=MAX_SEED)
    ] = 0,
    n_customers: Annotated[
        int | None, typer.Option(help="Campaign folder: the population size it ran with.", min=1)
    ] = None,
    estimators: Annotated[str, typer.Option(help="Comma-separated: ips, snips, dr, switch_dr.")] = (
        "ips,snips,dr,switch_dr"
    ),
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the intervals.", min=0, max=100_000)
    ] = 500,
    level: Annotated[float, typer.Option(help="Interval coverage.", min=0.5, max=0.999)] = 0.95,
    reward_model: Annotated[str, typer.Option(help="DR's reward model: ridge or gbt.")] = "gbt",
    seed: Annotated[
        int, typer.Option(help="Seed of the bootstrap, the folds and the policy.", min=0, max=MAX_SEED)
    ] = 0,
    baselines: Annotated[bool, typer.Option(help="Also evaluate every one-arm policy (always ARM).")] = False,
    replay_eval: Annotated[
        bool,
        typer.Option(
            "--replay", help="Also replay the policy (Li et al.), learning as it goes; uniform logs only."
        ),
    ] = False,
    budget: Annotated[
        float | None,
        typer.Option(
            help="--replay: dollars the policy may spend over the whole log (budgeted policies pace to it).",
            parser=Number(0, MAX_DOLLARS, above=True),
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Estimate a policy's net value per logged decision (revenue * margin - cost) off-policy."""
    from experiments.offline import baseline_targets, format_table
    from experiments.ope import OPEConfig, evaluate_many, is_uniform, replay, target_probabilities

    names = parse_estimators(estimators)
    if reward_model not in ("ridge", "gbt"):
        raise fail(f"--reward-model {reward_model!r}: allowed: ridge, gbt")
    kind: RewardModelKind = "gbt" if reward_model == "gbt" else "ridge"
    data = load_log(log, mapping, scenario, campaign_seed, n_customers)
    if len(data) < 20:
        raise fail(f"--log {str(log)!r}: {len(data)} logged decisions, at least 20 are needed")
    sim, arms = world(data, scenario, log)
    pol = target_policy(policy, sim, seed)
    try:
        target = target_probabilities(pol, data, arms)
    except ValueError as err:
        raise fail(f"--policy {policy!r}: cannot decide for this log ({err})") from None
    cfg = OPEConfig(estimators=names, n_bootstrap=bootstrap, level=level, seed=seed, reward_model=kind)
    targets = {policy: target.pi, **(baseline_targets(data) if baselines else {})}
    results = evaluate_many(data, targets, cfg)
    out: dict[str, Any] = {
        "log": {
            "source": data.source,
            "rows": len(data),
            "arms": list(data.arm_names),
            "margin": data.margin,
            "contacts_only": data.contacts_only,
            "uniform": is_uniform(data),
        },
        "policy": policy,
        "target_method": target.method,
        "results": {k: v.to_dict() for k, v in results.items()},
    }
    if replay_eval:
        if not is_uniform(data):
            raise fail(
                "--replay: the log is not uniformly randomized (pscore = 1 / allowed arms): replay is biased"
            )
        rp = replay(target_policy(policy, sim, seed), data, arms, budget=budget, level=level)
        out["replay"] = {**rp.to_dict(), "budget": budget}
    if as_json:
        print_json(out)
        return
    rows = [
        (label, e.estimator, e.value, e.low, e.high, r.diagnostics.ess)
        for label, r in results.items()
        for e in r.estimates
    ]
    from experiments.offline import Row

    typer.echo(format_table([Row(*row) for row in rows], level))
    if "replay" in out:
        rp = out["replay"]
        typer.echo(
            f"replay: {rp['value']:.4f} [{rp['low']:.4f}, {rp['high']:.4f}] on {rp['matched']} matched rows"
        )
    for w in results[policy].diagnostics.warnings:
        console.print(f"warning: {w}", highlight=False, markup=False)
    console.print(
        f"{len(data):,} logged decisions from {data.source}; {policy}: {target.method} action probabilities",
        highlight=False,
        markup=False,
    )
