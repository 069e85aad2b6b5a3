"""The habit to beat: ``explore_then_commit``, an A/B test of all arms, then the winner for all.

What campaign owners do today: for the first ``test_iterations`` iterations a random
``test_share`` of the candidates gets a uniformly random allowed contact arm (the rest waits:
no contact); then the winner of that test is sent to every candidate who can receive it, for the
rest of the campaign. The test is sized to its budget: its worst case (what the loop reserves)
is at most ``test_budget`` of the available budget per test iteration, so offers, which reserve
their cap, do not crowd the other arms out of the test. The winner is chosen once, from what has
been observed by then (delayed conversions that have not arrived yet are missing, as they are for
a person reading the test's report), with each arm's rate shrunk toward the test's pooled rate by
``shrinkage`` pseudo-contacts (an arm with one lucky conversion out of ten contacts does not
win), by ``criterion``:

* ``cost_per_goal`` (default): the lowest observed cost per unit of the goal metric (dollars per
  conversion, or per dollar of revenue), spend being send costs plus offer costs paid;
* ``rate``: the highest goal metric per contact (conversion rate, or revenue per contact);
* ``feasible``: the lowest cost per unit of the goal among the arms whose observed rate, sent
  to every candidate who can receive them, is projected to reach the remaining goal in the
  remaining iterations within the remaining budget (the highest rate if none is).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from policies.bandits import ArmStats, LearningPolicy, contact_mask, random_allowed
from policies.base import DecisionContext, Decisions, Feedback
from policies.delayed import Observations
from simulators.types import NO_CONTACT, FloatArray

Criterion = Literal["cost_per_goal", "rate", "feasible"]


class ExploreThenCommitPolicy(LearningPolicy):
    """A/B test on a slice of the audience, then one winning arm for everyone.

    Propensities: in the test, ``q / allowed contact arms`` for a tested customer and ``1 - q``
    for a waiting one, where ``q`` is the tested share (``test_share``, less if the test budget
    binds); after it, 1.

    Args:
        test_share: share of each test iteration's candidates in the test.
        test_iterations: iterations of testing before committing.
        criterion: how the winner is chosen (see the module doc).
        test_budget: most of the available budget one test iteration may reserve.
        shrinkage: pseudo-contacts at the pooled rate added to every arm's tally.
        seed: the policy's seed.
        delay_correction: unused by the tallies (kept for the common interface); default off.
    """

    name: ClassVar[str] = "explore_then_commit"

    def __init__(
        self,
        test_share: float = 0.2,
        test_iterations: int = 2,
        criterion: Criterion = "cost_per_goal",
        test_budget: float = 0.25,
        shrinkage: float = 100.0,
        seed: int | None = None,
        delay_correction: bool = False,
    ) -> None:
        super().__init__(seed, delay_correction)
        if not 0.0 < test_share <= 1.0:
            raise ValueError(f"test_share must be in (0, 1], got {test_share}")
        if not (0.0 < test_budget <= 1.0 and shrinkage >= 0) or test_iterations < 1:
            raise ValueError(
                "test_budget must be in (0, 1], shrinkage at least 0 and test_iterations at least 1; "
                f"got {test_budget}, {shrinkage}, {test_iterations}"
            )
        if criterion not in ("cost_per_goal", "rate", "feasible"):
            raise ValueError(f"criterion must be cost_per_goal, rate or feasible, got {criterion!r}")
        self.test_share = test_share
        self.test_iterations = test_iterations
        self.criterion: Criterion = criterion
        self.test_budget = test_budget
        self.shrinkage = shrinkage
        self.stats: ArmStats | None = None
        self.sends = np.zeros(0)
        self.winner: int | None = None

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "test_share": self.test_share,
            "test_iterations": self.test_iterations,
            "criterion": self.criterion,
            "test_budget": self.test_budget,
            "shrinkage": self.shrinkage,
        }

    def prepare(self, ctx: DecisionContext) -> None:
        if self.stats is None:
            self.stats = ArmStats(len(ctx.arms))
            self.sends = np.zeros(len(ctx.arms))

    def update(self, feedback: Feedback) -> None:
        self.prepare(feedback.ctx)
        sent = np.asarray(feedback.decision_ids) >= 0
        np.add.at(self.sends, np.asarray(feedback.decisions.arms)[sent], 1.0)
        super().update(feedback)

    def learn(self, obs: Observations) -> None:
        assert self.stats is not None
        self.stats.add(obs)

    def act(self, ctx: DecisionContext) -> Decisions:
        self.prepare(ctx)
        allowed = contact_mask(ctx.mask)
        n = len(ctx)
        if ctx.iteration < self.test_iterations and self.winner is None:
            arms, count = random_allowed(self.rng, allowed)
            can = allowed.any(axis=1)
            worst = np.asarray(ctx.arms.worst_case_cost, dtype=np.float64)
            expected_worst = float((allowed @ worst / count).sum())  # if everyone were tested
            cap = self.test_budget * ctx.budget_available
            q = min(self.test_share, cap / expected_worst) if expected_worst > 0 else self.test_share
            tested = self.rng.random(n) < q
            arms = np.where(tested & can, arms, NO_CONTACT)
            pscores = np.where(arms != NO_CONTACT, q / count, 1.0 - q)
            pscores = np.where(can, pscores, 1.0)
            return Decisions(arms=arms, pscores=pscores)
        if self.winner is None:
            self.winner = self.choose_winner(ctx)
        arms = np.where(allowed[:, self.winner], self.winner, NO_CONTACT).astype(np.int64)
        return Decisions(arms=arms, pscores=np.ones(n))

    def scores(self, ctx: DecisionContext) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per-arm ``(cost per unit of goal, goal per contact, spend per contact)`` as observed,
        the goal per contact shrunk toward the pooled rate."""
        assert self.stats is not None
        goal = self.stats.conversions if ctx.goal_metric == "conversions" else self.stats.revenue
        spend = self.sends * ctx.arms.send_cost + self.stats.offer_cost
        pooled = float(goal[1:].sum()) / max(float(self.sends[1:].sum()), 1.0)
        k = self.shrinkage
        rate = (goal + k * pooled) / (self.sends + k)
        rate[NO_CONTACT] = 0.0
        per_send = np.where(self.sends > 0, spend / np.maximum(self.sends, 1.0), ctx.arms.send_cost)
        with np.errstate(divide="ignore"):
            per_goal = np.where(rate > 0, per_send / np.maximum(rate, 1e-300), np.inf)
        return per_goal, rate, per_send

    def choose_winner(self, ctx: DecisionContext) -> int:
        """The winning contact arm (by :attr:`criterion`) from the tallies so far."""
        per_goal, rate, per_send = self.scores(ctx)
        candidates = np.zeros(len(ctx.arms), dtype=bool)
        candidates[1:] = self.sends[1:] > 0
        if not candidates.any():
            candidates[1:] = True
        if self.criterion == "rate" or not np.isfinite(per_goal[candidates]).any():
            return int(np.argmax(np.where(candidates, rate, -np.inf)))
        if self.criterion == "feasible":
            reach = np.asarray(ctx.mask, dtype=bool).mean(axis=0) * len(ctx) * max(ctx.iterations_left, 1)
            feasible = (
                candidates & (rate * reach >= ctx.goal_remaining) & (per_send * reach <= ctx.budget_available)
            )
            if not feasible.any():
                return int(np.argmax(np.where(candidates, rate, -np.inf)))
            candidates = feasible
        return int(np.argmin(np.where(candidates, per_goal, np.inf)))

    def _model_state(self) -> dict[str, Any]:
        if self.stats is None:
            return {}
        return {"stats": self.stats.state(), "sends": self.sends.tolist(), "winner": self.winner}

    def _restore_model(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.stats = ArmStats(len(state["sends"]))
        self.stats.restore(state["stats"])
        self.sends = np.asarray(state["sends"], dtype=np.float64)
        self.winner = None if state["winner"] is None else int(state["winner"])
