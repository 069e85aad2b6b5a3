"""Delayed feedback for learning policies: a per-decision buffer that turns events into rewards.

A conversion may arrive several iterations after its decision, and a decision is known to be a
non-conversion only when its attribution window closes (``ctx.attribution_window`` iterations
after the send). :class:`DelayedRewards` keeps every sent decision (arm, features) by decision id
until its window closes, and releases weighted observations for the learners:

* a **positive** (``converted = 1``, weight 1, with the order's revenue and offer cost) as soon as
  the decision's first conversion arrives (duplicates and conversions after the window are
  ignored, as the campaign loop does);
* a **negative** (``converted = 0``) when the window closes without a conversion.

Positives arrive early and negatives late, so learning only from those overstates conversion
rates while decisions are pending (before the first window closes, every observation is a
positive). With ``delay_correction`` (the default) a pending decision of age ``k``
(feedbacks seen since it was sent) already counts as a negative of weight ``F(k)``, the share of
conversions that arrive by age ``k``; the weight grows with ``F`` and reaches 1 when the window
closes, and a conversion withdraws it (a row of negative weight) before adding its positive.
``F`` is learned from the decisions whose window has closed; its prior (``delay_prior``
pseudo-conversions at age 0) counts a pending decision as a full negative at once, so before
any window has closed the rates are understated by the share of conversions still to come, never
overstated. Every release is
a set of rows ``(arm, features, converted, revenue, offer_cost, weight)``; models that keep
weighted sufficient statistics (counts, ``X^T W X``) apply them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from policies.base import Feedback
from simulators.money import find_decisions, first_per_decision, window_closed
from simulators.types import EventKind, FloatArray, IntArray


@dataclass(frozen=True)
class Observations:
    """Weighted observations released by :class:`DelayedRewards` (one row each).

    Attributes:
        arm: ``(m,)`` arm of the decision.
        features: ``(m, n_features)`` customer features at decision time (``n_features`` may be 0).
        converted: ``(m,)`` 1.0 for a conversion, 0.0 for a (partial) non-conversion.
        revenue: ``(m,)`` order revenue of a conversion, else 0.
        offer_cost: ``(m,)`` offer cost paid on the conversion, else 0.
        weight: ``(m,)`` weight of the row; negative rows withdraw earlier partial negatives.
        iteration: ``(m,)`` iteration of the decision.
    """

    arm: IntArray
    features: NDArray[np.float32]
    converted: FloatArray
    revenue: FloatArray
    offer_cost: FloatArray
    weight: FloatArray
    iteration: IntArray

    def __len__(self) -> int:
        return int(self.arm.shape[0])

    @staticmethod
    def concat(parts: list[Observations], n_features: int) -> Observations:
        """Concatenate releases in order."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Observations(
                np.empty(0, np.int64),
                np.empty((0, n_features), np.float32),
                np.empty(0),
                np.empty(0),
                np.empty(0),
                np.empty(0),
                np.empty(0, np.int64),
            )
        return Observations(
            np.concatenate([p.arm for p in parts]),
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.converted for p in parts]),
            np.concatenate([p.revenue for p in parts]),
            np.concatenate([p.offer_cost for p in parts]),
            np.concatenate([p.weight for p in parts]),
            np.concatenate([p.iteration for p in parts]),
        )


class DelayedRewards:
    """Per-decision buffer joining (possibly delayed) conversion events to decisions by id.

    Args:
        store_features: keep each decision's customer features (contextual policies); the
            number of features is taken from the first feedback.
        delay_correction: count pending decisions as partial negatives (see the module doc).
        delay_prior: pseudo-conversions at age 0 in the estimate of the delay distribution
            ``F`` (a prior that conversions come at once).
    """

    def __init__(
        self, store_features: bool = False, delay_correction: bool = True, delay_prior: float = 1.0
    ) -> None:
        self.store_features = store_features
        self.n_features = 0
        self.delay_correction = delay_correction
        self.delay_prior = delay_prior
        self.ids = np.empty(0, np.int64)
        self.iteration = np.empty(0, np.int64)
        self.arm = np.empty(0, np.int64)
        self.features = np.empty((0, 0), np.float32)
        self.credited = np.empty(0, np.float64)  # negative weight already released
        self.converted_age = np.empty(0, np.int64)  # -1: no conversion yet
        self.delay_counts = np.zeros(1, np.float64)  # conversions of closed decisions by age

    def __len__(self) -> int:
        """Decisions still pending (window open)."""
        return int(self.ids.shape[0])

    def arrival_share(self, window: int) -> FloatArray:
        """``(window + 1,)`` estimated share ``F(k)`` of conversions observed by age ``k``."""
        counts = np.zeros(window + 1)
        m = min(window + 1, self.delay_counts.shape[0])
        counts[:m] = self.delay_counts[:m]
        counts[window] += self.delay_counts[m:].sum()  # a shorter window folds the tail
        counts[0] += self.delay_prior
        share: FloatArray = np.cumsum(counts) / counts.sum()
        share[-1] = 1.0
        return share

    def pending(self, now: int, window: int) -> tuple[IntArray, NDArray[np.float32], FloatArray]:
        """Pending decisions without a conversion yet, and the share of their conversions still
        to come.

        Returns:
            ``(arm (p,), features (p, n_features), still_to_come (p,))`` where ``still_to_come`` is
            ``1 - F(age)``: multiply by a conversion probability to expect what will still arrive.
        """
        open_ = self.converted_age < 0
        share = self.arrival_share(window)
        age = np.clip(now - self.iteration[open_], 0, window)
        return self.arm[open_], self.features[open_], 1.0 - share[age]

    def update(self, feedback: Feedback, features: NDArray[np.floating[Any]] | None = None) -> Observations:
        """Add the iteration's sent decisions, join its conversions, close expired windows.

        Args:
            feedback: the loop's feedback after one iteration.
            features: ``(n, n_features)`` features to keep per candidate, if not the context's
                (e.g. the context's plus the policy's own per-customer history).

        Returns:
            The observations released by this feedback.
        """
        ctx = feedback.ctx
        now, window = ctx.iteration, max(int(ctx.attribution_window), 0)
        if self.delay_counts.shape[0] < window + 1:
            self.delay_counts = np.concatenate(
                [self.delay_counts, np.zeros(window + 1 - len(self.delay_counts))]
            )
        self._add(feedback, feedback.ctx.features if features is None else features)
        out = [self._join(feedback, now)]
        out.append(self._close(now, window))
        if self.delay_correction:
            out.append(self._accrue(now, window))
        return Observations.concat(out, self.n_features)

    def _add(self, feedback: Feedback, features: NDArray[np.floating[Any]]) -> None:
        ids = np.asarray(feedback.decision_ids, np.int64)
        sent = ids >= 0
        if not np.any(sent):
            return
        m = int(sent.sum())
        width = int(features.shape[1]) if self.store_features else 0
        if width != self.n_features:
            if len(self):
                raise ValueError(f"features changed width from {self.n_features} to {width}")
            self.n_features = width
            self.features = np.empty((0, width), np.float32)
        self.ids = np.concatenate([self.ids, ids[sent]])
        self.iteration = np.concatenate([self.iteration, np.full(m, feedback.ctx.iteration, np.int64)])
        self.arm = np.concatenate([self.arm, np.asarray(feedback.decisions.arms, np.int64)[sent]])
        feats = np.asarray(features, np.float32)[sent, :width]
        self.features = np.concatenate([self.features, feats])
        self.credited = np.concatenate([self.credited, np.zeros(m)])
        self.converted_age = np.concatenate([self.converted_age, np.full(m, -1, np.int64)])

    def _rows(
        self,
        idx: IntArray,
        converted: float,
        weight: FloatArray,
        revenue: FloatArray | None = None,
        offer_cost: FloatArray | None = None,
    ) -> Observations:
        m = idx.shape[0]
        return Observations(
            arm=self.arm[idx],
            features=self.features[idx],
            converted=np.full(m, converted),
            revenue=np.zeros(m) if revenue is None else revenue,
            offer_cost=np.zeros(m) if offer_cost is None else offer_cost,
            weight=weight,
            iteration=self.iteration[idx],
        )

    def _join(self, feedback: Feedback, now: int) -> Observations:
        ev = feedback.events
        conv = (ev.kind == EventKind.CONVERTED) & (ev.decision_id >= 0)
        empty = Observations.concat([], self.n_features)
        if not np.any(conv) or len(self) == 0:
            return empty
        ids, first = first_per_decision(ev.decision_id[conv])  # duplicates: the first event counts
        revenue, offer_cost = ev.revenue[conv][first], ev.offer_cost[conv][first]
        rows, found = find_decisions(self.ids, ids)
        revenue, offer_cost = revenue[found], offer_cost[found]
        fresh = self.converted_age[rows] < 0
        rows, revenue, offer_cost = rows[fresh], revenue[fresh], offer_cost[fresh]
        if rows.size == 0:
            return empty
        withdraw = np.flatnonzero(self.credited[rows] > 0)
        parts = [
            self._rows(rows[withdraw], 0.0, -self.credited[rows[withdraw]]),
            self._rows(rows, 1.0, np.ones(rows.shape[0]), revenue, offer_cost),
        ]
        self.credited[rows] = 0.0
        self.converted_age[rows] = np.maximum(now - self.iteration[rows], 0)
        return Observations.concat(parts, self.n_features)

    def _close(self, now: int, window: int) -> Observations:
        closed = window_closed(self.iteration, now + 1, window)  # iteration ``now`` is complete
        if not np.any(closed):
            return Observations.concat([], self.n_features)
        idx = np.flatnonzero(closed)
        conv_age = self.converted_age[idx]
        hit = conv_age >= 0
        np.add.at(self.delay_counts, np.minimum(conv_age[hit], window), 1.0)
        neg = idx[~hit]
        out = self._rows(neg, 0.0, 1.0 - self.credited[neg])
        keep = ~closed
        for name in ("ids", "iteration", "arm", "features", "credited", "converted_age"):
            setattr(self, name, getattr(self, name)[keep])
        return out

    def _accrue(self, now: int, window: int) -> Observations:
        open_ = np.flatnonzero(self.converted_age < 0)
        if open_.size == 0:
            return Observations.concat([], self.n_features)
        share = self.arrival_share(window)
        age = np.clip(now - self.iteration[open_], 0, window)
        delta = share[age] - self.credited[open_]
        grow = delta > 0
        idx = open_[grow]
        self.credited[idx] += delta[grow]
        return self._rows(idx, 0.0, delta[grow])

    # -- persistence --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-ready state (lists)."""
        return {
            "n_features": self.n_features,
            "ids": self.ids.tolist(),
            "iteration": self.iteration.tolist(),
            "arm": self.arm.tolist(),
            "features": self.features.tolist(),
            "credited": self.credited.tolist(),
            "converted_age": self.converted_age.tolist(),
            "delay_counts": self.delay_counts.tolist(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        self.n_features = int(state["n_features"])
        self.ids = np.asarray(state["ids"], np.int64)
        self.iteration = np.asarray(state["iteration"], np.int64)
        self.arm = np.asarray(state["arm"], np.int64)
        self.features = np.asarray(state["features"], np.float32).reshape(len(self.ids), self.n_features)
        self.credited = np.asarray(state["credited"], np.float64)
        self.converted_age = np.asarray(state["converted_age"], np.int64)
        self.delay_counts = np.asarray(state["delay_counts"], np.float64)
