"""Pacing: how hard one wave pushes toward the goal, given the deadline and the budget.

A learner (``funnel_ts``) values each contact; its pacer turns the campaign's position into two
numbers for the wave: a multiplier on the rule's marginal price (most it pays per unit of the
goal) and a multiplier on the rule's per-wave need (how much of the goal left this wave buys).
The observation is scenario-agnostic (fractions and ratios only), so a pacer learned on
randomized simulated campaigns applies to any campaign.

``rule`` is the neutral pacer (both multipliers 1: the learner's own deadline rule). ``ppo``
(:class:`PPOPacer`) is a small network trained with PPO on randomized simulated campaigns
(:mod:`experiments.pacing_env`, :func:`experiments.pacing.train_pacer`); its weights ship as a plain
``.npz`` (``policies/data/ppo_pacer.npz``) and its forward pass is numpy, so deciding never
imports torch.

A learned pacer's raw action is a point of ``[-1, 1]^2``; :func:`action_to_multipliers` maps it
log-uniformly to the price multiplier in ``[PRICE_RANGE]`` and the volume multiplier in
``[VOLUME_RANGE]`` (the one rule the environment and the pacer share).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PACERS",
    "PPO_PACER_PATH",
    "PRICE_RANGE",
    "VOLUME_RANGE",
    "MLPActor",
    "PPOPacer",
    "Pacer",
    "PacingAction",
    "PacingObservation",
    "RulePacer",
    "action_to_multipliers",
    "make_pacer",
]

PRICE_RANGE: tuple[float, float] = (0.25, 4.0)
"""Lowest and highest multiplier on the learner's marginal price a learned pacer may ask."""
VOLUME_RANGE: tuple[float, float] = (0.5, 3.0)
"""Lowest and highest multiplier on the learner's per-wave need a learned pacer may ask."""
PPO_PACER_PATH = Path(__file__).resolve().parent / "data" / "ppo_pacer.npz"
"""The shipped PPO pacer's actor weights (see :class:`MLPActor`)."""


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


def _log_uniform(u: float, lo: float, hi: float) -> float:
    return float(np.exp(np.log(lo) + 0.5 * (u + 1.0) * (np.log(hi) - np.log(lo))))


def action_to_multipliers(action: NDArray[np.floating] | tuple[float, float]) -> PacingAction:
    """A learned pacer's raw action in ``[-1, 1]^2`` as the wave's multipliers.

    Each coordinate is clipped to ``[-1, 1]`` and mapped log-uniformly: ``-1`` to the low end of
    its range, ``1`` to the high end, ``0`` to the geometric middle (price 1, volume
    ``sqrt(1.5)``). The first coordinate is the price (:data:`PRICE_RANGE`), the second the
    volume (:data:`VOLUME_RANGE`).
    """
    a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
    if a.shape != (2,) or not np.all(np.isfinite(a)):
        raise ValueError(f"a pacing action is 2 finite numbers, got {action!r}")
    return PacingAction(
        price=_log_uniform(float(a[0]), *PRICE_RANGE), volume=_log_uniform(float(a[1]), *VOLUME_RANGE)
    )


class MLPActor:
    """A small actor network's deterministic action, in numpy.

    The layers are ``x -> act(x @ W_0 + b_0) -> ... -> act(. @ W_{k-1} + b_{k-1}) -> . @ W_k + b_k``
    (the last layer is linear: Stable-Baselines3's Gaussian policy mean). Stored as an ``.npz`` of
    plain arrays (never a pickle): ``W0, b0, W1, b1, ...`` (``W`` of shape ``(in, out)``) and
    ``activation`` (``"tanh"`` or ``"relu"``).

    Args:
        weights: the layers' ``(W, b)`` in order.
        activation: the hidden layers' activation.
    """

    def __init__(
        self, weights: list[tuple[NDArray[np.float64], NDArray[np.float64]]], activation: str
    ) -> None:
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        if not weights:
            raise ValueError("an actor needs at least one layer")
        for i, (w, b) in enumerate(weights):
            if w.ndim != 2 or b.shape != (w.shape[1],):
                raise ValueError(f"layer {i}: W {w.shape} and b {b.shape} do not fit")
            if i and w.shape[0] != weights[i - 1][0].shape[1]:
                raise ValueError(
                    f"layer {i} takes {w.shape[0]} inputs, layer {i - 1} gives {weights[i - 1][0].shape[1]}"
                )
        self.weights = weights
        self.activation = activation

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0][0].shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.weights[-1][0].shape[1])

    def __call__(self, x: NDArray[np.floating]) -> NDArray[np.float64]:
        """The network's output for ``(n_inputs,)`` or ``(n, n_inputs)`` inputs."""
        h = np.asarray(x, dtype=np.float64)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(self.weights):
            h = h @ w + b
            if i < last:
                h = np.tanh(h) if self.activation == "tanh" else np.maximum(h, 0.0)
        return h

    def save(self, path: str | Path) -> Path:
        """Write the weights as a plain ``.npz`` (no pickle)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, NDArray[np.generic]] = {"activation": np.asarray(self.activation)}
        for i, (w, b) in enumerate(self.weights):
            arrays[f"W{i}"] = np.asarray(w, dtype=np.float32)
            arrays[f"b{i}"] = np.asarray(b, dtype=np.float32)
        with out.open("wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        return out

    @classmethod
    def load(cls, path: str | Path) -> MLPActor:
        """Read what :meth:`save` wrote (``allow_pickle=False``).

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not an actor's weights.
        """
        with np.load(Path(path), allow_pickle=False) as data:
            names = set(data.files)
            k = 0
            weights: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
            while f"W{k}" in names and f"b{k}" in names:
                weights.append((data[f"W{k}"].astype(np.float64), data[f"b{k}"].astype(np.float64)))
                k += 1
            if "activation" not in names or not weights:
                raise ValueError(f"{path}: not an actor's weights (needs W0, b0, ..., activation)")
            activation = str(data["activation"])
        return cls(weights, activation)


class PPOPacer:
    """The pacer learned with PPO on randomized simulated campaigns (see :mod:`experiments.pacing_env`).

    Its action is the actor's deterministic (mean) output for the observation's
    :meth:`PacingObservation.as_array`, mapped by :func:`action_to_multipliers`. The weights
    are read on the first call, not at construction or import.

    Args:
        path: the actor's ``.npz`` (default :data:`PPO_PACER_PATH`, the shipped one).
    """

    name = "ppo"

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else PPO_PACER_PATH
        self._actor: MLPActor | None = None

    @property
    def actor(self) -> MLPActor:
        """The actor network (loaded on first use)."""
        if self._actor is None:
            actor = MLPActor.load(self.path)
            if actor.n_inputs != PacingObservation.size() or actor.n_outputs != 2:
                raise ValueError(
                    f"{self.path}: the actor maps {actor.n_inputs} inputs to {actor.n_outputs} outputs; "
                    f"a pacer maps {PacingObservation.size()} to 2"
                )
            self._actor = actor
        return self._actor

    def __call__(self, obs: PacingObservation) -> PacingAction:
        return action_to_multipliers(self.actor(obs.as_array()))


PACERS: tuple[str, ...] = ("rule", "ppo")


def make_pacer(name: str) -> Pacer:
    """The pacer called ``name`` (one of :data:`PACERS`).

    Raises:
        ValueError: for an unknown name.
    """
    if name == "rule":
        return RulePacer()
    if name == "ppo":
        return PPOPacer()
    raise ValueError(f"unknown pacer {name!r}; known: {list(PACERS)}")
