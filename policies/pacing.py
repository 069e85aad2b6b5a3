"""Pacing: how hard one wave pushes toward the goal, given the deadline and the budget.

A learner (``funnel_ts``) values each contact; its pacer turns the campaign's position into two
numbers for the wave: a multiplier on the rule's marginal price (most it pays per unit of the
goal) and a multiplier on the rule's per-wave need (how much of the goal left this wave buys).
The observation is scenario-agnostic (fractions and ratios only), so a pacer learned on
randomized simulated campaigns applies to any campaign.

``rule`` is the neutral pacer (both multipliers 1: the learner's own deadline rule).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PACERS",
    "Pacer",
    "PacingAction",
    "PacingObservation",
    "RulePacer",
    "make_pacer",
]


@dataclass(frozen=True)
class PacingObservation:
    """Where the campaign stands before a wave, in scenario-agnostic units.

    Attributes:
        time_left: iterations left including this one, over the campaign's iterations (0, 1].
        budget_left: dollars the loop can still reserve, over the campaign's budget [0, 1].
        goal_left: goal still to reach after what open decisions are expected to bring, over
            the goal (0 when on track to be reached by what is pending).
        pending: goal expected from open decisions, over the goal.
        cost_per_unit: dollars spent per unit of the goal so far (delay-corrected), over what
            the whole budget affords per unit of the whole goal (1: on budget); 1 before any.
        affordable: what the money left affords per unit of the goal left, over the same
            starting ratio (above 1: richer than at the start).
        calibration: realized over forecast goal of closed decisions (the model's bias).
    """

    time_left: float
    budget_left: float
    goal_left: float
    pending: float
    cost_per_unit: float
    affordable: float
    calibration: float

    def as_array(self) -> NDArray[np.float32]:
        """``(7,)`` the fields in order, each clipped to [0, 10]."""
        return np.clip(np.asarray(astuple(self), dtype=np.float32), 0.0, 10.0)

    @classmethod
    def size(cls) -> int:
        return len(fields(cls))


@dataclass(frozen=True)
class PacingAction:
    """What the pacer asks of one wave.

    Attributes:
        price: multiplier on the learner's most it pays per unit of the goal at the margin.
        volume: multiplier on the learner's per-wave need.
    """

    price: float = 1.0
    volume: float = 1.0


class Pacer(Protocol):
    """Maps the campaign's position to the wave's multipliers."""

    name: str

    def __call__(self, obs: PacingObservation) -> PacingAction: ...


class RulePacer:
    """The neutral pacer: the learner's own deadline rule, unchanged."""

    name = "rule"

    def __call__(self, obs: PacingObservation) -> PacingAction:
        return PacingAction()


PACERS: tuple[str, ...] = ("rule",)


def make_pacer(name: str) -> Pacer:
    """The pacer called ``name`` (one of :data:`PACERS`).

    Raises:
        ValueError: for an unknown name.
    """
    if name == "rule":
        return RulePacer()
    raise ValueError(f"unknown pacer {name!r}; known: {list(PACERS)}")
