"""The offline value policy (``offline_value``): a per-arm ridge model of net value, greedy with
epsilon exploration, learned in one pass from a logged experiment or from campaign feedback.

A per-arm ridge model of the net value ``revenue * margin - cost`` on the features and their
pairwise products, greedy with epsilon exploration over the allowed arms, so its action
probabilities are known exactly (:meth:`OfflineValuePolicy.action_probabilities`, what off-policy
evaluation needs). It learns from a log in one pass (:meth:`OfflineValuePolicy.fit`,
importance-weighted by ``1 / pscore`` so non-uniform logs do not tilt the per-arm fits; any object
with the fields of :class:`BanditLog`, such as :class:`experiments.logs.LoggedData`) or from
campaign feedback through ``update`` (sufficient statistics, so both give the same model).
Training from a file, its evaluation and registration are :mod:`experiments.offline`'s
(``campaign-opt train --from-log``).

Unfitted, every arm's value is 0 and the greedy arm is the first allowed one (no contact): the
policy contacts only by exploring until campaign feedback teaches it. A policy fitted on a log acts
on customers described by that log's features (a simulator with other features is refused with a
:class:`ValueError`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from policies.base import DecisionContext, Decisions, Feedback, Policy
from simulators.types import NO_CONTACT, EventKind, FloatArray, IntArray


class BanditLog(Protocol):
    """What :meth:`OfflineValuePolicy.fit` reads of a log (:class:`experiments.logs.LoggedData`)."""

    @property
    def features(self) -> NDArray[np.float32]: ...
    @property
    def action(self) -> IntArray: ...
    @property
    def reward(self) -> FloatArray: ...
    @property
    def pscore(self) -> FloatArray: ...
    @property
    def n_arms(self) -> int: ...
    def __len__(self) -> int: ...


def value_basis(features: NDArray[np.floating[Any]], interactions: bool = True) -> FloatArray:
    """``(n, 1 + d + d (d + 1) / 2)``: intercept, features and their pairwise products (squares
    included), the basis of :class:`OfflineValuePolicy`'s per-arm models; ``(n, 1 + d)`` without
    ``interactions``."""
    x = np.asarray(features, dtype=np.float64)
    n, d = x.shape
    if not interactions:
        return np.concatenate([np.ones((n, 1)), x], axis=1)
    iu, ju = np.triu_indices(d)
    return np.concatenate([np.ones((n, 1)), x, x[:, iu] * x[:, ju]], axis=1)


MAX_STATISTICS = 250_000
"""Most numbers in the per-arm statistics ``(n_arms, p, p)`` for which ``interactions=None`` adds the
features' pairwise products: on for Hillstrom's log (3 arms, 11 features: 18,252) and the
``hillstrom`` scenario (3 arms, 18 features: 108,300), off for ``retail`` (37 arms, 24 features:
3.9 million, a ``policy.json`` of some 80 MB)."""


class OfflineValuePolicy(Policy):
    """Greedy on a per-arm ridge model of net value, epsilon-exploring among allowed arms.

    Propensity of arm ``a``: ``(1 - epsilon) [a is the greedy arm] + epsilon / allowed arms``;
    no contact is an arm like the others (its value is the organic net value).

    Args:
        epsilon: exploration probability (> 0 keeps every allowed arm's propensity positive).
        ridge: ridge penalty on the basis coefficients (the intercept is not penalized).
        margin: profit share of revenue when learning from campaign feedback (logs carry their
            own net value).
        interactions: add the features' pairwise products to the basis (for few features and
            many rows per arm, like Hillstrom's 11 and thousands; off for many arms); ``None``
            (the default) decides when the policy first sees features: on while the per-arm
            statistics stay small (``n_arms * p**2 <= MAX_STATISTICS`` for a basis of ``p``
            columns), so a fitted policy's ``policy.json`` stays a few megabytes.
        seed: the policy's seed.
    """

    name: ClassVar[str] = "offline_value"

    def __init__(
        self,
        epsilon: float = 0.05,
        ridge: float = 10.0,
        margin: float = 0.35,
        interactions: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__(seed)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        if not (ridge > 0 and math.isfinite(ridge)):
            raise ValueError(f"ridge must be a positive finite number, got {ridge}")
        self.epsilon, self.ridge, self.margin, self.interactions = epsilon, ridge, margin, interactions
        self.xtx: FloatArray | None = None  # (n_arms, p, p)
        self.xty: FloatArray | None = None  # (n_arms, p)
        self.weight: FloatArray | None = None  # (n_arms,)
        self._coef: FloatArray | None = None

    def config(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "ridge": self.ridge,
            "margin": self.margin,
            "interactions": self.interactions,
            "seed": self.seed,
        }

    # learning
    def _ensure(self, n_arms: int, n_features: int) -> None:
        if self.interactions is None:
            p_int = value_basis(np.zeros((1, n_features)), True).shape[1]
            self.interactions = n_arms * p_int**2 <= MAX_STATISTICS
        p = value_basis(np.zeros((1, n_features)), self.interactions).shape[1]
        if self.xtx is None:
            self.xtx, self.xty, self.weight = (
                np.zeros((n_arms, p, p)),
                np.zeros((n_arms, p)),
                np.zeros(n_arms),
            )
        elif self.xtx.shape != (n_arms, p, p):
            learned = _n_features(self.xtx.shape[1], bool(self.interactions))
            raise ValueError(
                f"the offline_value policy learned from {self.xtx.shape[0]} arms and {learned} features, "
                f"got {n_arms} arms and {n_features} features (a policy fitted on a log acts on that "
                "log's arms and features)"
            )

    def observe(
        self,
        features: NDArray[np.floating[Any]],
        arms: IntArray,
        values: FloatArray,
        weights: FloatArray,
        n_arms: int,
    ) -> None:
        """Add observations: ``(n, d)`` features, ``(n,)`` arms, net values and weights."""
        self._ensure(n_arms, features.shape[1])
        assert self.xtx is not None and self.xty is not None and self.weight is not None
        b = value_basis(features, bool(self.interactions))
        for a in np.unique(arms):
            m = arms == a
            bw = b[m] * weights[m, None]
            self.xtx[a] += bw.T @ b[m]
            self.xty[a] += bw.T @ values[m]
            self.weight[a] += weights[m].sum()
        self._coef = None

    def fit(self, data: BanditLog, weighted: bool = True) -> OfflineValuePolicy:
        """Learn from a whole log (weights ``1 / pscore`` when ``weighted``, normalized per arm to
        the arm's row count); returns ``self``."""
        w = 1.0 / data.pscore if weighted else np.ones(len(data))
        for a in range(data.n_arms):
            m = data.action == a
            if m.any():
                w[m] *= m.sum() / w[m].sum()
        self.observe(data.features, data.action, data.reward, w, data.n_arms)
        return self

    def update(self, feedback: Feedback) -> None:
        """Learn from one iteration's decisions and the events observed in it (conversions
        joined on the decision id, organic ones of customers not contacted on the customer; a
        conversion that arrives in a later iteration is not counted)."""
        ctx, dec, ev = feedback.ctx, feedback.decisions, feedback.events
        arms = np.asarray(dec.arms, np.int64)
        n = arms.shape[0]
        conv = ev.kind == EventKind.CONVERTED
        revenue, offer = np.zeros(n), np.zeros(n)
        sent = conv & (ev.decision_id >= 0)
        organic = conv & (ev.decision_id < 0)
        for sel, (row, hit) in (
            (sent, _rows_of(np.asarray(feedback.decision_ids, np.int64), ev.decision_id[sent])),
            (organic, _rows_of(np.asarray(ctx.customers, np.int64), ev.customer[organic])),
        ):
            if sel is organic:
                hit &= arms[row] == NO_CONTACT
            np.add.at(revenue, row[hit], ev.revenue[sel][hit])
            np.add.at(offer, row[hit], ev.offer_cost[sel][hit])
        value = revenue * self.margin - ctx.arms.send_cost[arms] - offer
        self.observe(np.asarray(ctx.features, np.float64), arms, value, np.ones(n), len(ctx.arms))

    # deciding
    def coefficients(self) -> FloatArray:
        """``(n_arms, p)`` ridge coefficients (solved once per change)."""
        if self.xtx is None or self.xty is None:
            raise ValueError("the offline_value policy has not learned anything yet (fit it on a log first)")
        if self._coef is None:
            p = self.xtx.shape[1]
            pen = np.full(p, self.ridge)
            pen[0] = 1e-8
            self._coef = np.stack(
                [np.linalg.solve(self.xtx[a] + np.diag(pen), self.xty[a]) for a in range(self.xtx.shape[0])]
            )
        return self._coef

    def values(self, features: NDArray[np.floating[Any]]) -> FloatArray:
        """``(n, n_arms)`` predicted net value of each arm.

        Raises:
            ValueError: nothing learned yet, or ``features`` has another number of columns than
                the features the policy learned from.
        """
        coef = self.coefficients()
        basis = value_basis(features, bool(self.interactions))
        if basis.shape[1] != coef.shape[1]:
            learned = _n_features(coef.shape[1], bool(self.interactions))
            raise ValueError(
                f"the offline_value policy learned from {learned} features, got {features.shape[1]} "
                "(a policy fitted on a log acts on that log's features)"
            )
        return np.asarray(basis @ coef.T, dtype=np.float64)

    def action_probabilities(self, ctx: DecisionContext) -> FloatArray:
        """``(n, n_arms)`` the policy's exact probabilities (see the class docstring)."""
        self._ensure(len(ctx.arms), ctx.features.shape[1])
        v = np.where(ctx.mask, self.values(ctx.features), -np.inf)
        greedy = np.argmax(v, axis=1)
        allowed = np.asarray(ctx.mask, dtype=np.float64)
        pi: FloatArray = self.epsilon * allowed / allowed.sum(axis=1, keepdims=True)
        pi[np.arange(len(ctx)), greedy] += 1.0 - self.epsilon
        return pi

    def act(self, ctx: DecisionContext) -> Decisions:
        pi = self.action_probabilities(ctx)
        u = self.rng.random(len(ctx))[:, None]
        arms = np.minimum((u > np.cumsum(pi, axis=1)).sum(axis=1), pi.shape[1] - 1).astype(np.int64)
        pscores = pi[np.arange(len(ctx)), arms]
        priority = self.values(ctx.features)[np.arange(len(ctx)), arms]
        return Decisions(arms=arms, pscores=pscores, priority=priority)

    def _state(self) -> dict[str, Any]:
        if self.xtx is None or self.xty is None or self.weight is None:
            return {}
        return {"xtx": self.xtx.tolist(), "xty": self.xty.tolist(), "weight": self.weight.tolist()}

    def _restore(self, state: dict[str, Any]) -> None:
        if state:
            self.xtx = np.asarray(state["xtx"], np.float64)
            self.xty = np.asarray(state["xty"], np.float64)
            self.weight = np.asarray(state["weight"], np.float64)
        self._coef = None


def _n_features(p: int, interactions: bool) -> int:
    """The number of features ``d`` of a basis of ``p`` columns (:func:`value_basis`)."""
    if not interactions:
        return p - 1
    return round((-3 + math.sqrt(9 + 8 * (p - 1))) / 2)  # p = 1 + d + d (d + 1) / 2


def _rows_of(ids: IntArray, query: IntArray) -> tuple[IntArray, NDArray[np.bool_]]:
    """Row of each ``query`` id in ``ids`` and whether it is there (``ids`` distinct)."""
    if ids.size == 0:
        return np.zeros(query.shape, np.int64), np.zeros(query.shape, bool)
    order = np.argsort(ids)
    pos = np.minimum(np.searchsorted(ids, query, sorter=order), ids.size - 1)
    row = order[pos]
    return row, ids[row] == query
