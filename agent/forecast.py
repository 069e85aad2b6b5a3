"""Looking ahead: the in-flight projection of delayed conversions, the pre-launch forecast, and
the forecast at the campaign's own pace while it runs (:func:`pace_forecast`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.events import EventsMixin
from agent.report import CampaignReport, IterationRecord


@dataclass(frozen=True)
class Forecast:
    """Pre-launch forecast from simulated campaigns (see :meth:`agent.Campaign.forecast`)."""

    runs: int
    p_goal_within_budget: float
    cost_to_goal_median: float | None
    """Median over the runs that reached the goal (``None`` if none did)."""
    cost_to_goal_q25: float | None
    cost_to_goal_q75: float | None
    spend_median: float

    @classmethod
    def of(cls, reports: Sequence[CampaignReport]) -> Forecast:
        """The forecast read off whole simulated campaigns (at least one)."""
        costs = [r.cost_to_goal for r in reports if r.cost_to_goal is not None]
        q = np.percentile(costs, [25, 50, 75]).tolist() if costs else [None, None, None]
        return cls(
            runs=len(reports),
            p_goal_within_budget=sum(r.goal_reached for r in reports) / len(reports),
            cost_to_goal_median=q[1],
            cost_to_goal_q25=q[0],
            cost_to_goal_q75=q[2],
            spend_median=float(np.median([r.spend for r in reports])),
        )


class ProjectionMixin(EventsMixin):
    """Observed plus still-expected conversions, and what the stop rule and the last wave make of
    them (see the README's "Delayed conversions")."""

    def projected(self) -> dict[str, float]:
        """Observed conversions and revenue plus what recent sends are still expected to bring.

        The pending part is the chain-ladder projection of :class:`agent.feedback.DelayTriangle`
        over the cohorts whose attribution window is still open.
        """
        conv, rev = self.triangle.pending(self.t)
        return {
            "conversions_pending": conv,
            "revenue_pending": rev,
            "conversions_projected": self.conversions + conv,
            "revenue_projected": self.revenue + rev,
        }

    def _counted(self) -> float:
        """The goal metric as the stop rule and the policy see it: observed plus pending when
        ``spec.stop_on_projected`` (for ``conversions`` and ``revenue``), else observed."""
        metric = self.spec.goal.metric
        if not self.spec.stop_on_projected or metric == "incremental_conversions":
            return self.achieved
        return self.projected()["conversions_projected" if metric == "conversions" else "revenue_projected"]

    def _contacts_needed(self, margin: float = 1.25) -> int:
        """Contacts enough to reach the rest of the goal at the yield observed so far (projected
        conversions or revenue per send, over every cohort), times ``margin``; unbounded when
        there is no yield to go by or the projection is off."""
        metric = self.spec.goal.metric
        sends = int(self.triangle.sends.sum())
        if not self.spec.stop_on_projected or metric == "incremental_conversions" or sends == 0:
            return np.iinfo(np.int64).max
        counted = self._counted()
        per_send = counted / sends
        if per_send <= 0:
            return np.iinfo(np.int64).max
        remaining = max(self.spec.goal.target - counted, 0.0)
        return int(np.ceil(margin * remaining / per_send))

    def _goal_in_flight(self) -> bool:
        """The goal is not reached yet, but the projection says recent sends will reach it."""
        return not self.goal_reached and self._counted() >= self.spec.goal.target

    def pace(self, *, recent: int = 5, draws: int = 2000, seed: int | None = 0) -> PaceForecast:
        """While it runs: where the campaign's own recent pace takes it (see :func:`pace_forecast`)."""
        metric = self.spec.goal.metric
        proj = self.projected()
        pending = 0.0 if metric == "incremental_conversions" else proj[f"{metric}_pending"]
        return pace_forecast(
            self.history,
            self.spec.goal.target,
            metric,
            self.ledger.budget,
            self.ledger.spent,
            self.ledger.reserved,
            self.achieved,
            pending,
            max(self.spec.max_iterations - self.iterations, 0),
            recent=recent,
            draws=draws,
            seed=seed,
        )


@dataclass(frozen=True)
class PaceForecast:
    """Where a running campaign gets at its own recent pace (:func:`pace_forecast`).

    Every field is a finite number or ``None`` (JSON-ready, no NaN or infinity). Waves are sending
    waves (iterations that sent something; held iterations are not counted).
    """

    waves_done: int
    """Sending waves so far."""
    achieved: float
    """The goal metric so far (observed)."""
    pending: float
    """Still expected from open decisions (the loop's projection of delayed conversions)."""
    per_wave: float
    """Goal units per sending wave at the recent pace (mean); 0 before any wave."""
    cost_per_unit: float
    """Dollars per goal unit at the recent pace; 0 when the recent waves brought no unit (no pace)."""
    goal_wave: int | None
    """The sending wave at which the goal is reached at this pace (``waves_done`` when the sends
    already made are expected to reach it); ``None``: not within the budget and the iterations left."""
    cost_to_goal: float | None
    """Total spend when the goal is reached at this pace, whatever the budget (``cost_to_goal -
    budget`` is what is missing); ``None``: no pace (no wave yet, or no unit in the recent waves)."""
    p_goal_within_budget: float
    """Monte-Carlo probability over the pace's uncertainty that the goal is reached within the
    budget and the iterations left (before any wave: 1 if the goal is already counted, else 0)."""
    add_budget: float
    """Dollars to add so the goal is reached at this pace (0 when it already is, and when there is no
    pace to price it by)."""
    reachable_target: float
    """The goal metric reachable within the budget and the iterations left at this pace."""
    message: str
    """One sentence for the owner."""


def _fmt_units(x: float, metric: str) -> str:
    """Goal units for a message: dollars for revenue, one decimal below 10."""
    num = f"{x:,.1f}" if abs(x) < 10 else f"{x:,.0f}"
    return f"${num}" if metric == "revenue" else num


def pace_forecast(
    history: Sequence[IterationRecord],
    goal_target: float,
    goal_metric: str,
    budget: float,
    spent: float,
    reserved: float,
    achieved: float,
    pending: float,
    iterations_left: int,
    *,
    recent: int = 5,
    draws: int = 2000,
    seed: int | None = 0,
) -> PaceForecast:
    """The forecast from the campaign's own results: at the pace of its last ``recent`` sending
    waves, at which wave and for how much it reaches the goal, how likely that is within the
    budget, and what to change if it is not.

    The model, deliberately simple:

    - **Pace.** Over the window from just before the ``recent``-th last sending wave to the last
      record, the goal units are the growth of the *projected* metric (observed plus the loop's
      chain-ladder projection of delayed conversions, so the last waves count what they are still
      expected to bring), and the cost is the growth of the spend. ``per_wave`` = units / sending
      waves, ``cost_per_unit`` = spend / units; a wave costs ``per_wave * cost_per_unit``.
      Revenue goals count conversions times the window's revenue per conversion;
      ``incremental_conversions`` (no per-wave record) counts conversions times the campaign's
      ratio of ``achieved`` to attributed conversions.
    - **What is left.** ``target - achieved - pending`` units from new waves. The pending units'
      sends are paid; their offers are not yet: they are charged ``pending * cost_per_unit``, at
      most ``reserved`` (the money held for them). The money for new waves is ``budget - spent``
      (reservations come back as their windows close; the recent waves' spend already includes
      the offers they redeemed).
    - **Uncertainty.** The conversions per wave are Gamma-Poisson: rate ~ Gamma(shape = window
      conversions + 1/2, rate = window waves) (a Jeffreys prior), ``draws`` draws from a seeded
      generator; the cost per wave is held at its window mean. A draw reaches the goal when its
      waves fit in ``iterations_left`` and its spend in ``budget``.

    The pace does not know what a policy will learn or what fatigue will do: it extrapolates the
    recent waves. Before any wave has been sent there is no pace: ``per_wave`` and
    ``cost_per_unit`` are 0, ``goal_wave`` and ``cost_to_goal`` ``None``, the probability 1 if the
    goal is already counted and 0 otherwise, and the message says to use the pre-launch
    :class:`Forecast` until the first wave.

    Args:
        history: the campaign's iteration records so far (sent and held), oldest first.
        goal_target: the goal's target.
        goal_metric: ``conversions``, ``revenue`` or ``incremental_conversions``.
        budget: the total cost threshold (dollars).
        spent: dollars spent so far.
        reserved: dollars held for open decisions (offers not redeemed yet).
        achieved: the goal metric so far (observed).
        pending: the goal metric still expected from open decisions (0 for incremental goals).
        iterations_left: iterations the campaign may still run (``max_iterations - iterations``).
        recent: sending waves the pace is measured over (at least 1).
        draws: Monte-Carlo draws (at least 1).
        seed: seed of the draws (the same seed gives the same forecast).

    Returns:
        The forecast; every number finite.

    Raises:
        ValueError: ``recent`` or ``draws`` below 1, or an unknown metric.
    """
    if recent < 1 or draws < 1:
        raise ValueError("recent and draws must be at least 1")
    if goal_metric not in ("conversions", "revenue", "incremental_conversions"):
        raise ValueError(f"unknown goal metric {goal_metric!r}")
    counted = achieved + pending
    remaining = goal_target - counted  # units new waves must bring
    sending = [i for i, rec in enumerate(history) if rec.sends > 0]
    waves_done = len(sending)
    left = max(iterations_left, 0)
    if waves_done == 0:
        done = remaining <= 0
        return PaceForecast(
            waves_done=0,
            achieved=achieved,
            pending=pending,
            per_wave=0.0,
            cost_per_unit=0.0,
            goal_wave=0 if done else None,
            cost_to_goal=spent if done else None,
            p_goal_within_budget=1.0 if done else 0.0,
            add_budget=0.0,
            reachable_target=counted,
            message=(
                "no pace yet: no wave has been sent"
                + ("; the goal is already counted" if done else "")
                + "; until the first wave the pre-launch forecast is the estimate"
            ),
        )
    # The window: from the record before the first of the last `recent` sending waves to the last.
    first = sending[-min(recent, waves_done)]
    base = history[first - 1] if first > 0 else None
    last = history[-1]
    n = sum(1 for i in sending if i >= first)
    conv = last.conversions_projected - (base.conversions_projected if base is not None else 0.0)
    rev = last.revenue_projected - (base.revenue_projected if base is not None else 0.0)
    spend = last.spend_total - (base.spend_total if base is not None else 0.0)
    conv = max(conv, 0.0)
    if goal_metric == "conversions":
        per_conv = 1.0
    elif goal_metric == "revenue":
        per_conv = max(rev, 0.0) / conv if conv > 0 else 0.0
    else:
        per_conv = achieved / last.conversions_total if last.conversions_total > 0 else 0.0
    units = conv * per_conv
    per_wave = units / n
    wave_cost = max(spend, 0.0) / n
    money = budget - spent
    if per_wave <= 0:  # no unit in the recent waves: no pace to extrapolate
        done = remaining <= 0
        return PaceForecast(
            waves_done=waves_done,
            achieved=achieved,
            pending=pending,
            per_wave=0.0,
            cost_per_unit=0.0,
            goal_wave=waves_done if done else None,
            cost_to_goal=spent if done else None,
            p_goal_within_budget=1.0 if done else 0.0,
            add_budget=0.0,
            reachable_target=counted,
            message=(
                f"at this pace: no {goal_metric} came in over the last {n} sending wave(s)"
                + (
                    "; the sends already made are expected to reach the goal"
                    if done
                    else f"; the goal is not in sight ({_fmt_units(counted, goal_metric)} of "
                    f"{_fmt_units(goal_target, goal_metric)} counted with what is pending): "
                    "change the policy or the arms, or lower the target"
                )
            ),
        )
    cost_per_unit = wave_cost / per_wave
    pending_cost = min(max(reserved, 0.0), max(pending, 0.0) * cost_per_unit)
    need = max(remaining, 0.0)
    waves_needed = math.ceil(need / per_wave - 1e-9) if need > 0 else 0
    cost_to_goal = spent + pending_cost + need * cost_per_unit
    within_budget = cost_to_goal <= budget + 1e-9
    within_iterations = waves_needed <= left
    goal_wave = waves_done + waves_needed if within_budget and within_iterations else None
    add_budget = max(cost_to_goal - budget, 0.0)
    affordable = max(money - pending_cost, 0.0) / cost_per_unit if cost_per_unit > 0 else math.inf
    reachable_target = counted + min(left * per_wave, affordable)
    # Monte Carlo over the rate: conversions per wave ~ Gamma(conv + 1/2, n), in goal units.
    rng = np.random.default_rng(seed)
    rate = rng.gamma(conv + 0.5, 1.0 / n, size=draws) * per_conv  # (draws,) goal units per wave
    if need > 0:
        waves_d = np.ceil(need / rate - 1e-9)  # (draws,)
        cost_d = spent + pending_cost + need * wave_cost / rate  # (draws,)
        p = float(np.mean((waves_d <= left) & (cost_d <= budget + 1e-9)))
    else:
        p = float(spent + pending_cost <= budget + 1e-9)
    if goal_wave is not None:
        outcome = f"goal at wave {goal_wave} for ${cost_to_goal:,.2f}; P(goal within budget) = {p:.2f}"
    else:
        beyond = [
            x
            for x, bad in (("the budget", not within_budget), (f"{left} iteration(s)", not within_iterations))
            if bad
        ]
        fixes = [f"allow {waves_needed - left} more iteration(s)"] if not within_iterations else []
        fixes += [f"add ${add_budget:,.2f}"] if add_budget > 0 else []
        fixes.append(f"lower the target to {_fmt_units(reachable_target, goal_metric)}")
        outcome = (
            f"goal at wave {waves_done + waves_needed} for ${cost_to_goal:,.2f}, "
            f"beyond {' and '.join(beyond)}; "
            f"P(goal within budget) = {p:.2f}; to reach it, {', or '.join(fixes)}"
        )
    pace = f"{_fmt_units(per_wave, goal_metric)} {goal_metric} a wave at ${cost_per_unit:,.2f} each"
    msg = f"at this pace ({pace}): {outcome}"
    return PaceForecast(
        waves_done=waves_done,
        achieved=achieved,
        pending=pending,
        per_wave=per_wave,
        cost_per_unit=cost_per_unit,
        goal_wave=goal_wave,
        cost_to_goal=cost_to_goal,
        p_goal_within_budget=p,
        add_budget=add_budget,
        reachable_target=reachable_target,
        message=msg,
    )
