"""Plots of a campaign report (matplotlib, headless): what owners would rather look at."""

from __future__ import annotations

from pathlib import Path

from agent.report import CampaignReport


def plot_report(report: CampaignReport, path: str | Path) -> Path:
    """Save a two-panel PNG: budget spent and goal progress per iteration; sends and spend by channel.

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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
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
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
