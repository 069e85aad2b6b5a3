"""The campaign specification: what the owner asks for, validated once at the edge."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.schedule import Schedule
from simulators.scenario import Scenario


class Goal(BaseModel):
    """A target on a metric: attributed ``conversions``, attributed ``revenue``, or
    ``incremental_conversions`` (treated minus holdout, scaled; needs a holdout)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Literal["conversions", "revenue", "incremental_conversions"] = "conversions"
    target: Annotated[float, Field(gt=0)]


class FrequencyCap(BaseModel):
    """At most ``max_contacts`` contacts per customer within any ``window_iterations`` consecutive
    iterations, and at least ``min_gap`` iterations between two contacts of one customer.

    Example:
        >>> FrequencyCap(max_contacts=2, window_iterations=5, min_gap=2).min_gap
        2
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_contacts: Annotated[int, Field(ge=1)]
    window_iterations: Annotated[int, Field(ge=1, le=10_000)]
    min_gap: Annotated[int, Field(ge=1, le=10_000)] = 1
    """1: contacts in consecutive iterations are allowed; 3: at least two iterations in between."""


class CampaignSpec(BaseModel):
    """Goal, cost threshold and limits of one campaign.

    Example:
        >>> spec = CampaignSpec(goal=Goal(target=2000), budget=10_000)
        >>> spec.max_iterations
        30
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    goal: Goal
    budget: Annotated[float, Field(gt=0, description="Total cost threshold in dollars.")]
    max_cost_per_customer: Annotated[float, Field(gt=0)] | None = None
    """Most that may be spent or reserved on one customer over the campaign (dollars)."""
    allowed_arms: list[str] | None = None
    """Arm names (``channel/content/offer``) the campaign may send; ``None``: all."""
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] = 30
    customers_per_iteration: Annotated[int, Field(ge=1)] = 10_000
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    """Share of the audience drawn at random at the start and never contacted; the report then
    estimates incremental conversions and revenue (treated minus holdout, scaled)."""
    frequency_cap: FrequencyCap | None = None
    channel_budgets: dict[str, Annotated[float, Field(gt=0)]] | None = None
    """Most that may be spent or reserved per channel (dollars), by channel name."""
    suppression: frozenset[int] = frozenset()
    """Customer ids never to contact."""
    max_offer_value: Annotated[float, Field(ge=0)] | None = None
    """Most an offer may cost on redemption (dollars); arms above it are refused when the campaign is
    created (named in ``allowed_arms``: an error; otherwise left out)."""
    alert_fractions: tuple[Annotated[float, Field(gt=0, le=1)], ...] = (0.5, 0.8, 1.0)
    """Spent shares of the budget at which an alert is raised."""
    attribution_window: Annotated[int, Field(ge=0, le=1000)] | None = None
    """Iterations after a send during which its conversions count and its offer reservation is
    held; ``None``: the scenario's longest conversion delay."""
    stop_on_projected: bool = True
    """Hold (send nothing) while observed plus still-expected conversions (or revenue) reach the
    goal, so a campaign does not pay for waves it does not need; ``False``: count observed only."""
    schedule: Schedule | None = None
    """When waves run in wall time and how long the attribution window lasts (hours); ``None``:
    iterations run back to back and the window is ``attribution_window`` iterations."""

    @model_validator(mode="after")
    def _one_window(self) -> CampaignSpec:
        if self.schedule is not None and self.attribution_window is not None:
            raise ValueError(
                "give the attribution window once: schedule.attribution_window_hours (with a schedule) "
                "or attribution_window (iterations, without one)"
            )
        return self

    @model_validator(mode="after")
    def _incremental_goal_needs_holdout(self) -> CampaignSpec:
        if self.goal.metric == "incremental_conversions" and self.holdout <= 0:
            raise ValueError("goal metric 'incremental_conversions' needs a holdout share > 0 (e.g. 0.05)")
        return self

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        *,
        goal_metric: Literal["conversions", "revenue", "incremental_conversions"] | None = None,
        goal_target: float | None = None,
        budget: float | None = None,
        max_iterations: int | None = None,
        customers_per_iteration: int | None = None,
        max_cost_per_customer: float | None = None,
        allowed_arms: list[str] | None = None,
        frequency_cap: FrequencyCap | None = None,
        channel_budgets: dict[str, float] | None = None,
        suppression: frozenset[int] = frozenset(),
        holdout: float = 0.0,
        max_offer_value: float | None = None,
    ) -> CampaignSpec:
        """The scenario's default campaign with any given field overridden."""
        d = scenario.default_goal
        metric = goal_metric or d.metric
        target = goal_target if goal_target is not None else d.target
        return cls(
            goal=Goal(metric=metric, target=target),
            budget=budget if budget is not None else d.budget,
            max_iterations=max_iterations or d.max_iterations,
            customers_per_iteration=customers_per_iteration or d.customers_per_iteration,
            max_cost_per_customer=max_cost_per_customer,
            allowed_arms=allowed_arms,
            frequency_cap=frequency_cap,
            channel_budgets=channel_budgets,
            suppression=suppression,
            holdout=holdout,
            max_offer_value=max_offer_value,
        )
