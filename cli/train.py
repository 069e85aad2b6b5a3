"""``campaign-opt train``: train an RL policy, or warm-start a learning bandit on simulated
campaigns, and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.common import MAX_SEED, fail, load_scenario_option, named_policy, writable_folder
from cli.common import stderr as console


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


_TRAIN_COLUMNS = (
    TextColumn("[bold]{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
)
