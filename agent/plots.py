"""Plots (matplotlib, headless, PNG): a campaign report, an A/B report and a round comparison."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agent.report import CampaignReport

if TYPE_CHECKING:
    from agent.comparison import ABReport, RoundsReport


def plot_report(report: CampaignReport, path: str | Path) -> Path:
    """Save a three-panel PNG: budget spent and goal progress per iteration; sends and spend by
    channel; sends and conversion rate of the ten most-sent arms.

    Args:
        report: a finished (or running) campaign's report.
        path: where to write the PNG (folders are created).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.5))
    it = [r.iteration + 1 for r in report.history]
    ax1.plot(it, [100 * r.spend_total / report.budget for r in report.history], "o-", label="budget spent")
    ax1.plot(it, [100 * r.goal_progress for r in report.history], "s-", label="goal progress")
    ax1.axhline(100, color="grey", lw=0.8, ls="--")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("% of budget / % of goal")
    ax1.set_ylim(0, 110)
    ax1.legend(loc="lower right")
    ax1.set_title(
        f"{report.scenario} / {report.policy}: {report.stop_reason}, "
        rf"\${report.spend:,.0f} of \${report.budget:,.0f}"
    )
    channels = list(report.sends_by_channel)
    ax2.bar(
        channels, [report.spend_by_channel[c] for c in channels], color="tab:orange", label="send spend ($)"
    )
    ax2.set_ylabel(r"send spend (\$)")
    ax2b = ax2.twinx()
    ax2b.plot(channels, [report.sends_by_channel[c] for c in channels], "ko", label="sends")
    ax2b.set_ylabel("sends")
    ax2.set_title(
        rf"{report.conversions:,} conversions, offers \${sum(report.offer_cost_by_offer.values()):,.0f}"
    )
    top = sorted(report.results_by_arm.items(), key=lambda kv: -kv[1]["sends"])[:10]
    names = [n for n, _ in top]
    ax3.barh(names, [r["sends"] for _, r in top], color="tab:blue")
    ax3.invert_yaxis()
    ax3.set_xlabel("sends")
    ax3.tick_params(axis="y", labelsize=7)
    ax3b = ax3.twiny()
    ax3b.plot([100 * r["conversions"] / r["sends"] for _, r in top], names, "rD")
    ax3b.set_xlabel("conversion rate (%)", color="tab:red")
    ax3.set_title("per arm (ten most sent)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_ab(report: ABReport, path: str | Path) -> Path:
    """Conversion rate (with Wilson intervals) and net value per customer per group, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [g.name for g in report.groups]
    rate = np.array([g.rate for g in report.groups])
    err = np.array(
        [[g.rate - g.rate_low for g in report.groups], [g.rate_high - g.rate for g in report.groups]]
    )
    net = np.array([g.net_value_per_customer for g in report.groups])
    sig = {c.group for c in report.comparisons if c.metric == "conversion_rate" and c.significant}
    colors = ["0.6" if n == report.control else ("tab:green" if n in sig else "tab:blue") for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.2 * len(names) + 4), 4.5))
    x = np.arange(len(names))
    axes[0].bar(x, 100 * rate, yerr=100 * err, color=colors, capsize=4)
    axes[0].set_ylabel("conversion rate (%)")
    axes[0].set_title(f"conversion rate by {report.by} ({100 * (1 - report.alpha):.0f}% Wilson)")
    axes[1].bar(x, net, color=colors)
    axes[1].axhline(0, color="black", lw=0.8)
    axes[1].set_ylabel("net value per customer ($)")
    axes[1].set_title(f"net value per customer (margin {report.margin:g})")
    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    fig.suptitle(f"control {report.control!r}; green: significant after {report.correction}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_rounds(report: RoundsReport, path: str | Path) -> Path:
    """Conversion rate by group, before and after (with intervals), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    groups = list(report.groups) or []
    names = [g.group for g in groups] or ["all"]
    before = np.array([g.control_value for g in groups]) if groups else np.array([report.before.rate])
    after = np.array([g.value for g in groups]) if groups else np.array([report.after.rate])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.2 * len(names) + 3), 4.5))
    ax.bar(x - 0.2, 100 * before, width=0.4, label=report.before.name, color="0.6")
    ax.bar(x + 0.2, 100 * after, width=0.4, label=report.after.name, color="tab:blue")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("conversion rate (%)")
    from agent.comparison import money_text

    cpc = report.delta("cost_per_conversion")
    ax.set_title(
        f"{report.before.name} vs {report.after.name}: cost per conversion "
        f"{money_text(cpc.before, 2)} -> {money_text(cpc.after, 2)}"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
