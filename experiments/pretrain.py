"""Pretraining: a learning policy runs simulated campaigns of a scenario before it meets a real one.

One function for the CLI's ``train`` (bandits), the experiment runner's warm start and the
benchmark's ``pretrained`` and ``sim-to-real`` tracks. Training campaigns use seeds
``TRAINING_SEED_BASE + 1_000 * seed + i``, far from the benchmark's evaluation seeds 0..K-1, so a
pretrained policy never saw the customers it is evaluated on. A policy that keeps per-campaign
state (``funnel_ts``) starts each campaign afresh and carries over what it learned of the
population, with its uncertainty widened.
"""

from __future__ import annotations

from collections.abc import Callable

from agent import Campaign, CampaignReport, CampaignSpec
from policies.base import Policy
from policies.registry import PRETRAINABLE
from simulators import Simulator
from simulators.scenario import Scenario

TRAINING_SEED_BASE = 1_000_000
"""Training campaign seeds start here (evaluation seeds are small integers)."""

__all__ = ["PRETRAINABLE", "TRAINING_SEED_BASE", "pretrain", "training_seed"]


def training_seed(seed: int, i: int) -> int:
    """The seed of training campaign ``i`` for a policy with seed ``seed``."""
    return TRAINING_SEED_BASE + 1_000 * seed + i


def pretrain(
    policy: Policy,
    scenario: Scenario,
    campaigns: int,
    seed: int = 0,
    spec: CampaignSpec | None = None,
    n_customers: int | None = None,
    on_campaign: Callable[[int, int, CampaignReport], None] | None = None,
) -> Policy:
    """Run ``campaigns`` simulated campaigns of ``scenario`` with ``policy`` (which learns in place).

    Args:
        policy: a learning policy.
        scenario: the world to train in.
        campaigns: number of training campaigns.
        seed: the policy's seed; training seeds derive from it (:func:`training_seed`).
        spec: the training campaigns' spec (default: the scenario's default campaign).
        n_customers: population size of the training worlds (default: the scenario's).
        on_campaign: called with ``(i, seed, report)`` after each campaign (progress).

    Returns:
        The same policy object, trained.
    """
    cspec = spec if spec is not None else CampaignSpec.from_scenario(scenario)
    for i in range(campaigns):
        s = training_seed(seed, i)
        sim = Simulator(scenario, n_customers=n_customers)
        report = Campaign(cspec, sim, policy, seed=s, scenario_name=scenario.name).run()
        if on_campaign is not None:
            on_campaign(i, s, report)
    return policy
