"""The one policy interface: ``act``, ``update``, ``save``, ``load``, a propensity per decision.

A policy sees a batch of candidate customers (:class:`DecisionContext`) and answers with one arm
per customer and the probability it gave that arm (:class:`Decisions`). Arm 0 is "no contact".
The campaign loop, not the policy, enforces budgets, caps and reachability: an arm the context
masks out is replaced by no contact.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
from numpy.typing import NDArray

from simulators.types import ArmTable, BoolArray, EventBatch, FloatArray, IntArray

GoalMetric = Literal["conversions", "revenue"]


@dataclass(frozen=True)
class DecisionContext:
    """What a policy knows when it decides for one iteration's candidates.

    Attributes:
        customers: ``(n,)`` candidate customer indices.
        features: ``(n, n_features)`` observable features in [0, 1].
        mask: ``(n, n_arms)`` arms allowed for each customer (arm 0 always allowed).
        arms: the scenario's arm table (costs, channels, offers).
        iteration: current iteration, from 0.
        iterations_left: iterations remaining including this one.
        budget_available: dollars the loop can still reserve.
        goal_metric: what the campaign counts toward its goal.
        goal_remaining: goal amount still to reach (observed, may lag delayed conversions).
        attribution_window: iterations after a send during which its conversion may still
            arrive; a decision with no conversion after that counts as a non-conversion.
        goal_pending: goal the loop still expects from open decisions and has already left out
            of ``goal_remaining`` (its projection; 0 when it counts observed results only). A
            policy with its own forecast of pending results adds this back before subtracting
            its own, so the pending goal is not subtracted twice.
    """

    customers: IntArray
    features: NDArray[np.float32]
    mask: BoolArray
    arms: ArmTable
    iteration: int
    iterations_left: int
    budget_available: float
    goal_metric: GoalMetric
    goal_remaining: float
    attribution_window: int = 0
    goal_pending: float = 0.0

    def __len__(self) -> int:
        return int(self.customers.shape[0])


@dataclass(frozen=True)
class Decisions:
    """A policy's answer for one batch.

    Attributes:
        arms: ``(n,)`` chosen arm per customer.
        pscores: ``(n,)`` probability the policy gave the chosen arm (in (0, 1]).
        priority: ``(n,)`` optional order in which to keep contacts when the budget cannot pay
            for all (higher first); ``None`` keeps the candidates' order.
    """

    arms: IntArray
    pscores: FloatArray
    priority: FloatArray | None = None


@dataclass(frozen=True)
class Feedback:
    """What the loop tells a policy after an iteration.

    Attributes:
        ctx: the context the decisions were made in.
        decisions: what was actually done per candidate, after the loop's overrides
            (``arms`` is 0 where the loop dropped a contact for budget, caps or reachability).
        decision_ids: ``(n,)`` decision id per candidate, -1 where nothing was sent.
        events: events observed in this iteration, for this and earlier decisions;
            ``decision_id == -1`` marks organic conversions of uncontacted customers.
    """

    ctx: DecisionContext
    decisions: Decisions
    decision_ids: IntArray
    events: EventBatch


class Policy(ABC):
    """Base class of every decision policy.

    Subclasses set :attr:`name`, implement :meth:`act`, and override :meth:`update` and
    :meth:`_state`/:meth:`_restore` when they learn.
    """

    name: ClassVar[str] = "policy"
    version: ClassVar[str] = "1"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def act(self, ctx: DecisionContext) -> Decisions:
        """Choose one arm per candidate, with its propensity."""

    def update(self, feedback: Feedback) -> None:  # noqa: B027 (baselines do not learn)
        """Learn from one iteration: its decisions and every event observed during it.

        Events may answer decisions of earlier iterations (delayed conversions): a learning
        policy keeps what it needs per decision id and joins on ``events.decision_id``.
        """

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready) that rebuild an equivalent untrained policy."""
        return {"seed": self.seed}

    def _state(self) -> dict[str, Any]:
        """Learned state (JSON-ready); baselines have none."""
        return {}

    def _restore(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Inverse of :meth:`_state`."""

    def save(self, path: str | Path) -> Path:
        """Write config, learned state and random state into folder ``path``; returns it."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "policy": self.name,
            "version": self.version,
            "config": self.config(),
            "state": self._state(),
            "rng": self.rng.bit_generator.state,
        }
        (folder / "policy.json").write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Self:
        """Rebuild a policy saved with :meth:`save` (``kwargs`` supply live objects, e.g. a
        simulator for the oracle)."""
        doc = json.loads((Path(path) / "policy.json").read_text(encoding="utf-8"))
        if doc.get("policy") != cls.name:
            raise ValueError(f"{path} holds a {doc.get('policy')!r} policy, not {cls.name!r}")
        obj = cls(**doc["config"], **kwargs)
        obj._restore(doc["state"])
        obj.rng.bit_generator.state = doc["rng"]
        return obj
