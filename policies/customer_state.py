"""What a campaign's events have shown of each customer, and the decisions still open.

:class:`CustomerState` is the per-customer record a learner builds from funnel events (engagement
per channel, clicks without a purchase, purchases while not contacted, unsubscribes) with what its
population models expected of the same sends (for per-customer residual multipliers);
:class:`OpenDecisions` holds sent decisions whose attribution window is still open. Used by
:mod:`policies.funnel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from policies.logistic import logit
from simulators.types import FloatArray, IntArray

RESIDUAL_PRIOR = 1.0
"""Shape (and rate) of the Gamma prior of the per-customer funnel multipliers, in expected events."""

N_STATE = 9
"""Per-customer state features besides the per-channel ones (see :meth:`CustomerState.features`)."""


class CustomerState:
    """What the campaign's events have shown of each customer (arrays grown on demand).

    Attributes:
        sent, delivered, opened: ``(n, n_channels)`` contacts, deliveries and opens per channel.
        clicked: ``(n,)`` clicks; ``click_converted``: conversions of decisions with a click.
        noclick_converted: ``(n,)`` conversions of contacted decisions without a click.
        organic: ``(n,)`` purchases while not contacted (organic conversion events).
        contacted_iterations: ``(n,)`` iterations in which the customer was contacted.
        unsubscribed: ``(n,)`` unsubscribes (any channel).
    """

    def __init__(self, n_channels: int) -> None:
        self.n_channels = n_channels
        self.size = 0
        self.sent = np.zeros((0, n_channels))
        self.delivered = np.zeros((0, n_channels))
        self.opened = np.zeros((0, n_channels))
        self.clicked = np.zeros(0)
        self.click_converted = np.zeros(0)
        self.noclick_converted = np.zeros(0)
        self.organic = np.zeros(0)
        self.contacted_iterations = np.zeros(0)
        self.unsubscribed = np.zeros(0)
        # What the population models expected of the same sends (for the per-customer residuals).
        self.exp_opened = np.zeros((0, n_channels))
        self.exp_clicked = np.zeros(0)
        self.exp_click_converted = np.zeros(0)
        self.exp_noclick_converted = np.zeros(0)

    _FIELDS = (
        "sent",
        "delivered",
        "opened",
        "clicked",
        "click_converted",
        "noclick_converted",
        "organic",
        "contacted_iterations",
        "unsubscribed",
        "exp_opened",
        "exp_clicked",
        "exp_click_converted",
        "exp_noclick_converted",
    )

    def grow(self, customers: IntArray) -> None:
        """Make room for customer indices up to ``customers.max()``."""
        need = int(customers.max()) + 1 if customers.size else 0
        if need <= self.size:
            return
        new = max(need, 2 * self.size, 1024)
        for f in self._FIELDS:
            old = getattr(self, f)
            arr = np.zeros((new, *old.shape[1:]))
            arr[: self.size] = old[: self.size]
            setattr(self, f, arr)
        self.size = new

    def features(
        self, customers: IntArray, iterations_seen: int, base_rate: float, open_rate: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """State features of ``(n,)`` customers.

        Args:
            customers: customer indices.
            iterations_seen: iterations of the campaign observed so far (exposure to organic
                purchase).
            base_rate: the population's organic purchase rate per iteration (shrinkage target).
            open_rate: ``(n_channels,)`` the population's open rate per channel.

        Returns:
            ``(shared (n, N_STATE), per_channel (n, n_channels, 2))``: shared are the logits of
            the shrunken purchase rates while not contacted and while contacted without a click,
            log exposure, any such purchase, clicks
            without a purchase, clicks with one, any unsubscribe, contacts, and the logit of the
            shrunken overall click-through; per channel, the logit of the shrunken open rate and log
            deliveries.
        """
        self.grow(customers)
        c = customers
        contacted = np.minimum(self.contacted_iterations[c], iterations_seen)
        alone = np.maximum(iterations_seen - contacted, 0.0)
        strength = 2.0  # pseudo-iterations of the population rate
        # purchase rate while not contacted (sure things, sleeping dogs) and, apart, while
        # contacted without a click (sleeping dogs buy less when contacted)
        organic_rate = (self.organic[c] + strength * base_rate) / (alone + strength)
        contacted_rate = (self.noclick_converted[c] + strength * base_rate) / (contacted + strength)
        buys = self.organic[c] + self.noclick_converted[c]
        opens = self.opened[c].sum(axis=1)
        clicks = self.clicked[c]
        shared = np.stack(
            [
                logit(organic_rate) - logit(base_rate),
                logit(contacted_rate) - logit(base_rate),
                np.log1p(alone + contacted) / np.log(31.0),
                (buys > 0).astype(np.float64),
                np.log1p(np.maximum(clicks - self.click_converted[c], 0.0)),
                np.log1p(self.click_converted[c]),
                (self.unsubscribed[c] > 0).astype(np.float64),
                np.log1p(self.sent[c].sum(axis=1)) / np.log(31.0),
                logit((clicks + 0.5) / (opens + 5.0)) - logit(0.1),
            ],
            axis=1,
        )
        own = (self.opened[c] + 2.0 * open_rate[None, :]) / (self.delivered[c] + 2.0)
        per_channel = np.stack(
            [logit(own) - logit(open_rate)[None, :], np.log1p(self.delivered[c]) / np.log(31.0)], axis=2
        )
        return shared, per_channel

    def multipliers(self, customers: IntArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per-customer random effects on the funnel: ``(open (n, n_channels), click (n,),
        convert after a click (n,), convert without a click (n,))``.

        Each is the posterior mean of a Gamma(``RESIDUAL_PRIOR``, ``RESIDUAL_PRIOR``) multiplier
        on the population model's probability, given the events the customer produced and what the
        model expected of the same sends: ``(observed + a) / (expected + a)`` (a Poisson-Gamma
        random effect). A customer who converts after every click, or opens every SMS, is lifted
        above what the features say; one who clicks and never buys is lowered.
        """
        self.grow(customers)
        c = customers
        a = RESIDUAL_PRIOR
        return (
            (self.opened[c] + a) / (self.exp_opened[c] + a),
            (self.clicked[c] + a) / (self.exp_clicked[c] + a),
            (self.click_converted[c] + a) / (self.exp_click_converted[c] + a),
            (self.noclick_converted[c] + a) / (self.exp_noclick_converted[c] + a),
        )

    def state(self) -> dict[str, list[Any]]:
        return {f: getattr(self, f)[: self.size].tolist() for f in self._FIELDS}

    def restore(self, state: dict[str, list[Any]]) -> None:
        for f in self._FIELDS:
            arr = np.asarray(state[f], dtype=np.float64)
            if f in ("sent", "delivered", "opened", "exp_opened"):
                arr = arr.reshape(-1, self.n_channels)
            setattr(self, f, arr)
        self.size = int(self.clicked.shape[0])


@dataclass
class OpenDecisions:
    """Sent decisions whose attribution window is still open (struct of arrays)."""

    ids: IntArray
    customer: IntArray
    arm: IntArray
    iteration: IntArray
    clicked: NDArray[np.bool_]
    converted: NDArray[np.bool_]
    forecast: FloatArray  # expected goal value at decision time (posterior mean)
    realized: FloatArray  # goal value realized so far
    x: NDArray[np.float32]  # (n, d_x) inputs at decision time
    labelled: NDArray[np.bool_]  # delivery, open and click already learned from
    delivered: NDArray[np.bool_]  # seen so far (a real channel's funnel events may come later)
    opened: NDArray[np.bool_]
    own: NDArray[np.float32]  # (n, 2) own-channel state features at decision time
    expected: FloatArray  # (n, 4) what the models expected: open, click, convert after a click, without

    @staticmethod
    def empty(d_x: int) -> OpenDecisions:
        return OpenDecisions(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, bool),
            np.zeros(0, bool),
            np.zeros(0),
            np.zeros(0),
            np.zeros((0, d_x), np.float32),
            np.zeros(0, bool),
            np.zeros(0, bool),
            np.zeros(0, bool),
            np.zeros((0, 2), np.float32),
            np.zeros((0, 4)),
        )

    @staticmethod
    def defaults(n: int) -> dict[str, NDArray[Any]]:
        """Values of the fields a state saved before they existed lacks (labelled, nothing seen)."""
        return {
            "labelled": np.ones(n, bool),
            "delivered": np.zeros(n, bool),
            "opened": np.zeros(n, bool),
            "own": np.zeros((n, 2), np.float32),
            "expected": np.zeros((n, 4)),
        }

    def take(self, keep: NDArray[np.bool_]) -> OpenDecisions:
        return OpenDecisions(*(getattr(self, f)[keep] for f in OPEN_FIELDS))

    def concat(self, other: OpenDecisions) -> OpenDecisions:
        return OpenDecisions(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in OPEN_FIELDS))


OPEN_FIELDS = (
    "ids", "customer", "arm", "iteration", "clicked", "converted", "forecast", "realized", "x",
    "labelled", "delivered", "opened", "own", "expected",
)  # fmt: skip
