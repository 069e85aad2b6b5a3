"""Experiment plots (matplotlib, Agg backend): a trial's budget and learning curves, and the
comparison of an experiment's policies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from experiments.compare import CompareRow
    from experiments.records import TrialResult


def plot_trial(result: TrialResult, path: Path) -> Path:
    """Three panels over iterations: spend and reservations against the budget, goal progress
    against the oracle's, and the regret to the oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result.curve
    x = np.arange(len(curve))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ax = axes[0]
    spend = np.array([p["spend"] for p in curve])
    reserved = np.array([p["reserved"] for p in curve])
    ax.plot(x, spend, label="spend", color="tab:blue")
    ax.plot(x, spend + reserved, label="spend + reserved", color="tab:blue", linestyle=":")
    if curve:
        ax.axhline(curve[0]["budget"], color="tab:red", linestyle="--", label="budget")
    ax.set_title("budget")
    ax.set_xlabel("iteration")
    ax.set_ylabel("$")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(x, [p["goal_progress"] for p in curve], label=result.spec.label, color="tab:green")
    ax.plot(x, [p["oracle_goal_progress"] for p in curve], label="oracle", color="gray", linestyle="--")
    ax.set_ylim(0, 1.05)
    ax.set_title("goal progress")
    ax.set_xlabel("iteration")
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(x, [p["regret"] for p in curve], color="tab:orange")
    ax.set_title("regret to the oracle (goal metric)")
    ax.set_xlabel("iteration")
    fig.suptitle(result.trial_id, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_comparison(rows: Sequence[CompareRow], path: Path) -> Path:
    """Per scenario: median cost to goal (IQR whiskers) per policy, goal-reached rate on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r.scenario for r in rows)) or ["(none)"]
    fig, axes = plt.subplots(1, len(scenarios), figsize=(max(5.0, 1.2 * len(rows) + 2) * len(scenarios), 4.2))
    axes_list = list(np.atleast_1d(axes))
    for ax, scenario in zip(axes_list, scenarios, strict=True):
        group = [r for r in rows if r.scenario == scenario]
        x = np.arange(len(group))
        med = [r.cost_to_goal_median or 0.0 for r in group]
        lo = [
            max(m - (r.cost_to_goal_q25 if r.cost_to_goal_q25 is not None else m), 0.0)
            for m, r in zip(med, group, strict=True)
        ]
        hi = [
            max((r.cost_to_goal_q75 if r.cost_to_goal_q75 is not None else m) - m, 0.0)
            for m, r in zip(med, group, strict=True)
        ]
        ax.bar(x, med, yerr=[lo, hi], capsize=3, color="tab:blue")
        top = max([*med, 1.0])
        for xi, r in zip(x, group, strict=True):
            ax.annotate(f"{r.goal_reached_rate:.0%}", (xi, top * 1.02), ha="center", fontsize=7)
        ax.set_xticks(x, [r.policy for r in group], rotation=40, ha="right", fontsize=7)
        ax.set_ylim(0, top * 1.12)
        ax.set_title(f"{scenario}: cost to goal (median, IQR); goal-reached rate on top", fontsize=9)
        ax.set_ylabel("$")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
