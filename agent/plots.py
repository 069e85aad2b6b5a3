"""Plots of a campaign report (matplotlib, headless): what owners would rather look at."""

from __future__ import annotations

from pathlib import Path

from agent.report import CampaignReport


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
