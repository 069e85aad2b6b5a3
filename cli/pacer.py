"""``campaign-opt train-pacer``: train the PPO pacer on randomized simulated campaigns
(experiments/pacing.py) and write its weights (``.npz``, plain arrays) with a ``.json`` report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import MAX_SEED, fail, print_json, writable_folder


def train_pacer(
    timesteps: Annotated[
        int, typer.Option(help="PPO timesteps (one wave each).", min=256, max=10_000_000)
    ] = 60_000,
    seed: Annotated[int, typer.Option(help="Training seed.", min=0, max=MAX_SEED)] = 0,
    out: Annotated[
        Path,
        typer.Option(
            help="Weights file (.npz). The shipped pacer is policies/data/ppo_pacer.npz; "
            "funnel_ts:pacer=ppo uses that one."
        ),
    ] = Path("runs/ppo_pacer.npz"),
    max_seconds: Annotated[
        float, typer.Option(help="Stop training after this much wall time.", min=1.0, max=86_400.0)
    ] = 540.0,
    eval_episodes: Annotated[
        int, typer.Option(help="Fresh campaigns to compare the pacer with the rule on.", min=0, max=10_000)
    ] = 100,
) -> None:
    """Train the PPO pacer (price and volume multipliers per wave) and print its report as JSON."""
    if out.suffix != ".npz":
        raise fail(f"--out: the weights file must end in .npz, got {out.name!r}")
    writable_folder("--out", out.parent)
    from experiments.pacing import train_pacer as train

    print_json(
        train(timesteps, seed, out, max_seconds=max_seconds, eval_episodes=eval_episodes, progress=False)
    )
