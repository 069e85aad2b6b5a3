"""The diagnostic ladder's rungs between the oracle and a learner (``campaign-opt benchmark --ladder``).

Each rung changes one thing from the one above it, so the ratio between two rungs says where the
money goes:

- ``oracle``: the true expectations, the oracle's allocator (:func:`policies.baselines.buy_wave`).
- ``feature_oracle``: the best model of the observable features, the same allocator.
- ``estimation``: the learner's own model, fitted offline on a large randomized sample
  (:class:`RandomTeacher`), frozen, the same allocator (:class:`ModelAllocator` with
  ``learn=False``, no exploration): what the learner's model class costs.
- ``exploration``: the learner online from a cold start, learning from every wave and exploring
  by posterior draws, the same allocator: what learning during the campaign costs.
- ``pacing``: the learner with its own pacing (the policy itself): what its pacing costs or saves.

The rungs wrap a :class:`policies.funnel.FunnelTSPolicy` rather than adding flags to it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from policies.base import DecisionContext, Decisions, Feedback, Policy
from policies.baselines import buy_wave
from policies.funnel import FunnelTSPolicy
from simulators.types import NO_CONTACT

__all__ = ["ModelAllocator", "RandomTeacher"]


class RandomTeacher(Policy):
    """Sends a uniformly random allowed arm to a random ``share`` of each wave's candidates (the
    rest rest) and lets ``learner`` learn from every event: a randomized sample for offline
    fitting. Propensities are exact.

    Args:
        learner: the model that learns (in place).
        share: probability a candidate is contacted.
    """

    name: ClassVar[str] = "random_teacher"

    def __init__(self, learner: FunnelTSPolicy, share: float = 0.5, seed: int | None = None) -> None:
        super().__init__(seed)
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.learner = learner
        self.share = share

    def config(self) -> dict[str, Any]:
        return {"share": self.share, "seed": self.seed}

    def act(self, ctx: DecisionContext) -> Decisions:
        self.learner.values(ctx, explore=0.0)  # the learner records the wave's forecasts
        mask = np.asarray(ctx.mask, dtype=bool).copy()
        mask[:, NO_CONTACT] = False
        n = len(ctx)
        keys = np.where(mask, self.rng.random(mask.shape), -1.0)
        arms = np.argmax(keys, axis=1).astype(np.int64)
        options = mask.sum(axis=1)
        contact = (self.rng.random(n) < self.share) & (options > 0)
        arms = np.where(contact, arms, NO_CONTACT)
        pscores = np.where(contact, self.share / np.maximum(options, 1), 1.0 - self.share)
        pscores = np.where(options > 0, pscores, 1.0)
        return Decisions(arms=arms, pscores=pscores)

    def update(self, feedback: Feedback) -> None:
        self.learner.update(feedback)


class ModelAllocator(Policy):
    """The oracle's allocator driven by a learner's model.

    A diagnostic rung: its propensities are reported as 1 (the allocator's, as the oracle's),
    even when it values arms by posterior draws, so its logs are not for off-policy estimation.

    Args:
        learner: the model (a fitted or a cold :class:`FunnelTSPolicy`).
        learn: whether the model keeps learning from the campaign's events.
        explore: scale of the posterior draws the allocator values arms by (0: posterior mean).
        pace: factor on the per-wave share of the remaining goal (as the oracle's).
        safety: standard deviations of safety margin (as the oracle's).
    """

    name: ClassVar[str] = "model_allocator"

    def __init__(
        self,
        learner: FunnelTSPolicy,
        learn: bool = True,
        explore: float | None = None,
        pace: float = 1.0,
        safety: float = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.learner = learner
        self.learn = learn
        self.explore = explore
        self.pace = pace
        self.safety = safety

    def config(self) -> dict[str, Any]:
        return {
            "learn": self.learn,
            "explore": self.explore,
            "pace": self.pace,
            "safety": self.safety,
            "seed": self.seed,
        }

    def act(self, ctx: DecisionContext) -> Decisions:
        w = self.learner.values(ctx, explore=self.explore)
        return buy_wave(ctx, w.value, w.cost, self.pace, self.safety, w.unit)

    def update(self, feedback: Feedback) -> None:
        if self.learn:
            self.learner.update(feedback)
