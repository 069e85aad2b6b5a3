"""Typed records shared by every simulator: arms, events and ground truth (all numpy arrays)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def encode_array(a: NDArray[Any]) -> str:
    """An array as base64 ``.npy`` bytes (dtype and shape kept, no pickle): JSON-ready state."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_array(text: str) -> NDArray[Any]:
    """Inverse of :func:`encode_array` (refuses pickled object arrays)."""
    out: NDArray[Any] = np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)
    return out


NO_CONTACT = 0
"""Arm 0 is always "no contact": nothing is sent, nothing is paid."""


class EventKind(IntEnum):
    """Kinds of response events, in funnel order."""

    DELIVERED = 0
    OPENED = 1
    CLICKED = 2
    CONVERTED = 3
    UNSUBSCRIBED = 4


@dataclass(frozen=True)
class ArmTable:
    """The arms of a scenario. Arm 0 is no contact (channel, content and offer are -1).

    Attributes:
        names: ``(n_arms,)`` ``"channel/content/offer"`` names, ``"no_contact"`` first.
        channel: ``(n_arms,)`` channel index per arm (-1 for no contact).
        content: ``(n_arms,)`` content index per arm (-1 for no contact).
        offer: ``(n_arms,)`` offer index per arm (-1 for no contact).
        send_cost: ``(n_arms,)`` dollars paid when the arm is sent.
        max_offer_cost: ``(n_arms,)`` worst-case offer cost on redemption.
        discount: ``(n_arms,)`` discount fraction of the arm's offer.
        channel_names, content_names, offer_names: the index tables.
    """

    names: tuple[str, ...]
    channel: IntArray
    content: IntArray
    offer: IntArray
    send_cost: FloatArray
    max_offer_cost: FloatArray
    discount: FloatArray
    channel_names: tuple[str, ...]
    content_names: tuple[str, ...]
    offer_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    @staticmethod
    def build(
        send_cost: dict[str, float],
        contents: list[str],
        offers: dict[str, tuple[float, float]],
        combos: list[tuple[str, str, str]] | None = None,
    ) -> ArmTable:
        """The arm table of channels, contents and offers: no contact first, then ``combos``
        (``(channel, content, offer)`` names) or every combination.

        Args:
            send_cost: channel name -> dollars per send, in channel order.
            contents: content names, in order.
            offers: offer name -> ``(discount, cap)``; the cap (the worst case a redemption costs)
                counts only for offers with a discount.
            combos: the arms to build; ``None``: every channel x content x offer.
        """
        channels, offer_names = list(send_cost), list(offers)
        if combos is None:
            combos = [(c, k, o) for c in channels for k in contents for o in offer_names]
        ch = np.array([-1] + [channels.index(c) for c, _, _ in combos], dtype=np.int64)
        co = np.array([-1] + [contents.index(k) for _, k, _ in combos], dtype=np.int64)
        of = np.array([-1] + [offer_names.index(o) for _, _, o in combos], dtype=np.int64)
        send = np.array([0.0] + [send_cost[c] for c, _, _ in combos])
        disc = np.array([0.0] + [offers[o][0] for _, _, o in combos])
        cap = np.where(disc > 0, np.array([0.0] + [offers[o][1] for _, _, o in combos]), 0.0)
        return ArmTable(
            names=("no_contact", *("/".join(c) for c in combos)),
            channel=ch,
            content=co,
            offer=of,
            send_cost=send,
            max_offer_cost=cap,
            discount=disc,
            channel_names=tuple(channels),
            content_names=tuple(contents),
            offer_names=tuple(offer_names),
        )

    @property
    def worst_case_cost(self) -> FloatArray:
        """``(n_arms,)`` the most one decision with this arm can cost: send plus capped offer."""
        return self.send_cost + self.max_offer_cost

    def index(self, name: str) -> int:
        """Arm index from its name (``"email/new_arrivals/none"``) or its number as text.

        Raises:
            ValueError: unknown arm, listing what is allowed.
        """
        if name.isdigit() and int(name) < len(self.names):
            return int(name)
        if name in ("none", "no_contact"):
            return NO_CONTACT
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(
                f"unknown arm {name!r}; allowed: an index 0..{len(self.names) - 1} or one of "
                f"{list(self.names)}"
            ) from None


@dataclass(frozen=True)
class EventBatch:
    """Response events, one row per event (struct of arrays).

    Attributes:
        decision_id: ``(n_events,)`` the decision the event responds to; -1 for organic conversions
            of customers who were not contacted.
        customer: ``(n_events,)`` customer index.
        kind: ``(n_events,)`` :class:`EventKind` codes.
        iteration: ``(n_events,)`` iteration in which the event happened.
        revenue: ``(n_events,)`` order value for conversions, else 0.
        offer_cost: ``(n_events,)`` discount paid on redemption for conversions, else 0.
    """

    decision_id: IntArray
    customer: IntArray
    kind: NDArray[np.int8]
    iteration: IntArray
    revenue: FloatArray
    offer_cost: FloatArray

    def __len__(self) -> int:
        return int(self.decision_id.shape[0])

    @staticmethod
    def empty() -> EventBatch:
        """A batch with no events."""
        return EventBatch(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int8),
            np.empty(0, np.int64),
            np.empty(0, np.float64),
            np.empty(0, np.float64),
        )

    @staticmethod
    def concat(batches: list[EventBatch]) -> EventBatch:
        """Concatenate batches in order."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return EventBatch.empty()
        return EventBatch(*(np.concatenate([getattr(b, f) for b in batches]) for f in EventBatch._fields()))

    @staticmethod
    def _fields() -> tuple[str, ...]:
        return ("decision_id", "customer", "kind", "iteration", "revenue", "offer_cost")

    def select(self, mask: BoolArray) -> EventBatch:
        """The events where ``mask`` is true."""
        return EventBatch(*(getattr(self, f)[mask] for f in EventBatch._fields()))

    def count(self, kind: EventKind) -> int:
        """Number of events of one kind."""
        return int(np.count_nonzero(self.kind == kind))


@dataclass(frozen=True)
class GroundTruth:
    """The simulator's true expectations for (customer, arm) pairs; any broadcast shape.

    Attributes:
        p_deliver, p_open, p_click: marginal funnel probabilities of the contact.
        p_visit: probability of a shop visit (click or organic) in the iteration.
        p_convert: probability of a conversion (caused by the contact or organic).
        p_convert_baseline: the same customer's probability without contact (arm 0).
        p_redeem: probability the offer is redeemed (conversion after seeing the offer).
        p_unsubscribe: probability the contact makes the customer unsubscribe from the channel.
        revenue: expected order revenue.
        offer_cost: expected offer cost.
        send_cost: send cost (certain).
        cost: expected total cost (send plus offer).
        worst_case_cost: the most the decision can cost (what the ledger reserves).
    """

    p_deliver: FloatArray
    p_open: FloatArray
    p_click: FloatArray
    p_visit: FloatArray
    p_convert: FloatArray
    p_convert_baseline: FloatArray
    p_redeem: FloatArray
    p_unsubscribe: FloatArray
    revenue: FloatArray
    offer_cost: FloatArray
    send_cost: FloatArray
    cost: FloatArray
    worst_case_cost: FloatArray

    @property
    def uplift(self) -> FloatArray:
        """Incremental conversion probability caused by the contact (negative for sleeping dogs)."""
        return self.p_convert - self.p_convert_baseline

    def net_value(self, margin: float) -> FloatArray:
        """Expected ``revenue * margin - cost`` of the decision."""
        return self.revenue * margin - self.cost


@runtime_checkable
class CustomerSimulator(Protocol):
    """What the agent, the environments and the policies need from a customer world.

    Any object with these members can stand in for :class:`simulators.Simulator`, so a user can
    plug in their own customer model. Customers are indices ``0..n_customers-1``; all methods are
    vectorized over arrays of them.
    """

    @property
    def arms(self) -> ArmTable: ...

    @property
    def n_customers(self) -> int: ...

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    @property
    def iteration(self) -> int: ...

    @property
    def margin(self) -> float: ...

    def reset(self, seed: int | None = None) -> None:
        """Draw a fresh population and clear all state; the same seed gives the same world."""

    def features(self, customers: IntArray) -> NDArray[np.float32]:
        """``(n, n_features)`` observable features in [0, 1] (static and contact history)."""

    def arm_mask(self, customers: IntArray) -> BoolArray:
        """``(n, n_arms)`` which arms may be sent (reachable, not unsubscribed); arm 0 always."""

    def expected(self, customers: IntArray, arms: IntArray) -> GroundTruth:
        """True expectations for broadcastable arrays of customers and arms (no state change)."""

    def send(self, decision_ids: IntArray, customers: IntArray, arms: IntArray) -> EventBatch:
        """Send one iteration's decisions; returns the events observed in this iteration."""

    def advance(self) -> EventBatch:
        """Close the iteration: delayed and organic conversions arrive, fatigue decays."""
