"""The observation of ``CampaignOpt/Campaign-v0``, built from campaign statistics.

Shared by :class:`envs.campaign.CampaignEnv` and by policies that act outside the environment
(``policies.rl``): both compute the same statistics (the environment from its own bookkeeping,
a policy from what the campaign loop tells it) and this module turns them into the vector, so the
layout and the scaling live in one place. See the module docstring of :mod:`envs.campaign` for
the meaning of every entry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
ObsType = NDArray[np.float32]

HEAD_NAMES: tuple[str, ...] = (
    "budget_remaining",
    "budget_spent",
    "budget_reserved",
    "goal_progress",
    "iteration",
    "pending",
    "last_wave",
)
"""The global entries, in order."""


def observation_names(
    segments: Sequence[str], channels: Sequence[str], arms: Sequence[str]
) -> tuple[str, ...]:
    """Names of the observation entries.

    Args:
        segments: lifecycle segment names (without ``"all"``).
        channels: channel names.
        arms: contact arm names (arm 0, no contact, excluded).
    """
    names = list(HEAD_NAMES)
    for s in segments:
        names += [f"segment/{s}/{k}" for k in ("size", "sends", "contacted", "conversion_rate")]
        names.append(f"segment/{s}/fatigue")
        names += [f"segment/{s}/reachable_{c}" for c in channels]
    for a in arms:
        names += [f"arm/{a}/{k}" for k in ("sends", "conversion_rate", "click_rate")]
        names.append(f"arm/{a}/unsubscribe_rate")
    return tuple(names)


@dataclass
class CampaignStats:
    """Raw statistics of a campaign, in the units the observation scales.

    Attributes:
        spent: money spent / budget.
        reserved: money reserved / budget.
        progress: goal metric achieved / target (clipped to 1 in the observation).
        iteration: iterations done / max_iterations.
        pending: open, unconverted decisions / (customers_per_iteration * max(window, 1)).
        last_wave: customers in the last wave / customers_per_iteration.
        n_customers: population size.
        seg_size: ``(S,)`` customers per lifecycle segment.
        seg_sends: ``(S,)`` contacts sent per segment.
        seg_contacted: ``(S,)`` customers of the segment contacted at least once.
        seg_conv: ``(S,)`` attributed conversions per segment.
        seg_fatigue: ``(S,)`` decayed delivered contacts summed over the segment.
        seg_reach: ``(S, n_channels)`` customers of the segment that may still get the channel.
        arm_sends: ``(n_arms,)`` contacts per arm (arm 0 ignored).
        arm_conv: ``(n_arms,)`` attributed conversions per arm.
        arm_click: ``(n_arms,)`` clicks per arm.
        arm_unsub: ``(n_arms,)`` unsubscribes per arm.
    """

    spent: float
    reserved: float
    progress: float
    iteration: float
    pending: float
    last_wave: float
    n_customers: int
    seg_size: FloatArray
    seg_sends: FloatArray
    seg_contacted: FloatArray
    seg_conv: FloatArray
    seg_fatigue: FloatArray
    seg_reach: FloatArray
    arm_sends: FloatArray
    arm_conv: FloatArray
    arm_click: FloatArray
    arm_unsub: FloatArray


def max_sends_log(max_iterations: int, customers_per_iteration: int) -> float:
    """The log-scale divisor of the ``sends`` entries: ``log1p(max_iterations * cpi)``."""
    return math.log1p(max_iterations * customers_per_iteration)


def build_observation(stats: CampaignStats, sends_log: float) -> ObsType:
    """The ``Campaign-v0`` observation vector for ``stats``, clipped to [0, 1], float32.

    Args:
        stats: the campaign's statistics.
        sends_log: :func:`max_sends_log` of the campaign.
    """
    spent, reserved = stats.spent, stats.reserved
    head = [
        1.0 - spent - reserved,
        spent,
        reserved,
        stats.progress,
        stats.iteration,
        stats.pending,
        stats.last_wave,
    ]
    parts: list[FloatArray] = [np.asarray(head)]
    if stats.seg_size.size:
        size = stats.seg_size
        safe = np.maximum(size, 1.0)
        seg = np.column_stack(
            [
                size / max(stats.n_customers, 1),
                np.log1p(stats.seg_sends) / sends_log,
                stats.seg_contacted / safe,
                stats.seg_conv / np.maximum(stats.seg_sends, 1.0),
                stats.seg_fatigue / safe / 5.0,
                stats.seg_reach / safe[:, None],
            ]
        )
        parts.append(seg.reshape(-1))
    sends = np.maximum(stats.arm_sends[1:], 1.0)
    arm = np.column_stack(
        [
            np.log1p(stats.arm_sends[1:]) / sends_log,
            stats.arm_conv[1:] / sends,
            stats.arm_click[1:] / sends,
            stats.arm_unsub[1:] / sends,
        ]
    )
    parts.append(arm.reshape(-1))
    obs = np.concatenate(parts).astype(np.float32)
    np.clip(obs, 0.0, 1.0, out=obs)
    return obs
