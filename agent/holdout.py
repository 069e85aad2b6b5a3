"""The holdout group and what the campaign achieved against it (incremental conversions)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from agent.state import CampaignError, CampaignState


def draw_holdout(n_customers: int, share: float, seq: np.random.SeedSequence) -> NDArray[np.bool_]:
    """``(n_customers,)`` a random ``share`` of the audience never to contact (none for 0).

    Raises:
        CampaignError: the share leaves the holdout or the treated group empty.
    """
    holdout = np.zeros(n_customers, dtype=bool)
    if share > 0:
        k = round(share * n_customers)
        if k < 1 or k >= n_customers:
            raise CampaignError(
                f"holdout {share} of {n_customers} customers leaves an empty group; use a larger audience"
            )
        holdout[np.random.default_rng(seq).choice(n_customers, size=k, replace=False)] = True
    return holdout


class HoldoutMixin(CampaignState):
    """The goal metric achieved so far, and the incremental effect over the holdout group."""

    @property
    def achieved(self) -> float:
        """Goal metric reached so far (observed; for ``incremental_conversions`` the estimate)."""
        metric = self.spec.goal.metric
        if metric == "incremental_conversions":
            inc = self.incremental()
            return 0.0 if inc is None else max(inc["incremental_conversions"], 0.0)
        return float(self.conversions if metric == "conversions" else self.revenue)

    def incremental(self) -> dict[str, float] | None:
        """Incremental conversions and revenue of the campaign, with 95% confidence intervals.

        The treated group is everyone not in the holdout (contacted or not: an intent-to-treat
        comparison, so the policy's targeting cannot bias it). With per-customer totals ``y``,
        the estimate is ``n_treated * (mean(y | treated) - mean(y | holdout))`` and its standard
        error ``n_treated * sqrt(var_t / n_t + var_h / n_h)`` (normal approximation).

        Returns:
            ``None`` without a holdout; else the estimates, ``*_ci_low``/``*_ci_high``, and the
            group sizes.
        """
        if not self.holdout.any():
            return None
        h, t = self.holdout, ~self.holdout
        n_t, n_h = int(t.sum()), int(h.sum())
        out: dict[str, float] = {"treated_customers": n_t, "holdout_customers": n_h}
        for name, y in (("conversions", self.customer_conversions), ("revenue", self.customer_revenue)):
            yt, yh = y[t].astype(np.float64), y[h].astype(np.float64)
            diff = yt.mean() - yh.mean()
            se = np.sqrt(yt.var(ddof=1) / n_t + yh.var(ddof=1) / n_h) if min(n_t, n_h) > 1 else np.inf
            out[f"incremental_{name}"] = float(n_t * diff)
            out[f"incremental_{name}_ci_low"] = float(n_t * (diff - 1.96 * se))
            out[f"incremental_{name}_ci_high"] = float(n_t * (diff + 1.96 * se))
        return out

    @property
    def goal_reached(self) -> bool:
        return self.achieved >= self.spec.goal.target
