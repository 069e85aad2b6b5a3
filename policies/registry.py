"""The policy catalogue: every policy the project knows, by the name used on the CLI, in configs,
the benchmark and the API, with what it is (:class:`PolicyEntry`); and the factories that build one
from its name or load one saved.

A name is ``NAME`` or ``NAME:key=value,key=value`` to set hyperparameters (constructor
arguments, e.g. ``epsilon_greedy:epsilon=0.05`` or ``budgeted_ts:pace=1.2,explore=0.5``); values
are converted to the argument's annotated type (floats must be finite) and checked by the policy's
constructor. ``fixed:ARM`` takes an arm instead.

Every other list of policies (:data:`POLICY_NAMES`, :data:`POLICY_CLASSES`, :data:`PRETRAINABLE`,
:data:`RL_ALGORITHMS`, :data:`NON_ADAPTIVE`, :data:`PEERS`) is derived from :data:`CATALOGUE`; add
a policy there and nowhere else. Classes are imported on first use, so reading the catalogue loads
neither the RL policies nor the peers.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union

from policies.base import Policy
from simulators.types import CustomerSimulator

PolicyKind = Literal["baseline", "yardstick", "bandit", "contextual", "rl", "peer"]
"""What a policy is: ``baseline`` (a habit to beat), ``yardstick`` (knows more than a policy may:
the benchmark's reference), ``bandit`` (context-free learner), ``contextual`` (learns per customer
features), ``rl`` (Stable-Baselines3, trained on ``Campaign-v0``), ``peer`` (another library through
an adapter)."""

KINDS: tuple[PolicyKind, ...] = typing.get_args(PolicyKind)


@dataclass(frozen=True)
class PolicyEntry:
    """One policy of the catalogue.

    Attributes:
        name: the name on the CLI, in configs and in ``policy.json`` (the class's ``name``).
        loader: ``module:Class``, imported on first use of :attr:`cls`.
        kind: what the policy is (:data:`PolicyKind`).
        adaptive: learns from the campaign's own responses and is ranked as a learner by the
            benchmark (yardsticks, habits and explore-then-commit are not).
        pretrainable: can be pretrained on simulated campaigns before evaluation
            (:func:`experiments.pretrain.pretrain`; RL policies train with Stable-Baselines3 instead).
        description: one line on what it does.
        argument: what follows ``NAME:`` instead of hyperparameters (``ARM`` for ``fixed``), or ``""``.
    """

    name: str
    loader: str
    kind: PolicyKind
    adaptive: bool
    pretrainable: bool
    description: str
    argument: str = ""

    @property
    def spelling(self) -> str:
        """The name as written on the CLI: ``fixed:ARM``, ``oracle``."""
        return f"{self.name}:{self.argument}" if self.argument else self.name

    @property
    def cls(self) -> type[Policy]:
        """The policy class (its module is imported on first use)."""
        module, _, attr = self.loader.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise TypeError(f"{self.loader} is not a Policy class")
        return cls

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data (``campaign-opt policies list --json``)."""
        return {
            "name": self.name,
            "usage": self.spelling,
            "kind": self.kind,
            "adaptive": self.adaptive,
            "pretrainable": self.pretrainable,
            "class": self.loader,
            "description": self.description,
        }


def _entries(*entries: PolicyEntry) -> dict[str, PolicyEntry]:
    return {e.name: e for e in entries}


CATALOGUE: Mapping[str, PolicyEntry] = _entries(
    PolicyEntry(
        name="random",
        loader="policies.baselines:RandomPolicy",
        kind="baseline",
        adaptive=False,
        pretrainable=False,
        description="uniformly random among each customer's allowed arms, no contact included",
    ),
    PolicyEntry(
        name="fixed",
        loader="policies.baselines:FixedPolicy",
        kind="baseline",
        adaptive=False,
        pretrainable=False,
        description="one arm for everyone who can receive it (the send-everyone-the-same habit)",
        argument="ARM",
    ),
    PolicyEntry(
        name="oracle",
        loader="policies.baselines:OraclePolicy",
        kind="yardstick",
        adaptive=False,
        pretrainable=False,
        description="knows the simulator's true response model; buys the goal at the lowest price it finds",
    ),
    PolicyEntry(
        name="feature_oracle",
        loader="policies.feature_oracle:FeatureOraclePolicy",
        kind="yardstick",
        adaptive=False,
        pretrainable=False,
        description="the oracle's allocator on the best model of the observable features",
    ),
    PolicyEntry(
        name="explore_then_commit",
        loader="policies.etc:ExploreThenCommitPolicy",
        kind="baseline",
        adaptive=False,
        pretrainable=False,
        description="A/B test on a slice of the audience, then one winning arm for everyone",
    ),
    PolicyEntry(
        name="epsilon_greedy",
        loader="policies.bandits:EpsilonGreedyPolicy",
        kind="bandit",
        adaptive=True,
        pretrainable=True,
        description="best estimated value per contact, a random allowed arm with probability epsilon",
    ),
    PolicyEntry(
        name="ucb",
        loader="policies.bandits:UCBPolicy",
        kind="bandit",
        adaptive=True,
        pretrainable=True,
        description="UCB1 for batches: optimistic index per arm, batch spread by hallucinated rewards",
    ),
    PolicyEntry(
        name="thompson",
        loader="policies.bandits:ThompsonPolicy",
        kind="bandit",
        adaptive=True,
        pretrainable=True,
        description="Thompson sampling on a Beta-Bernoulli posterior per arm (and a revenue model)",
    ),
    PolicyEntry(
        name="lin_ucb",
        loader="policies.contextual:LinUCBPolicy",
        kind="contextual",
        adaptive=True,
        pretrainable=True,
        description="LinUCB: per customer the allowed arm with the highest upper confidence bound",
    ),
    PolicyEntry(
        name="lin_ts",
        loader="policies.contextual:LinTSPolicy",
        kind="contextual",
        adaptive=True,
        pretrainable=True,
        description="linear Thompson sampling on the customer's features",
    ),
    PolicyEntry(
        name="budgeted_ts",
        loader="policies.budgeted:BudgetedTSPolicy",
        kind="contextual",
        adaptive=True,
        pretrainable=True,
        description="budget-aware contextual Thompson sampling with Lagrangian pacing",
    ),
    PolicyEntry(
        name="funnel_ts",
        loader="policies.funnel:FunnelTSPolicy",
        kind="bandit",
        adaptive=True,
        pretrainable=True,
        description="factored-funnel Thompson sampling with per-customer event state and deadline pacing",
    ),
    PolicyEntry(
        name="offline_value",
        loader="policies.offline_value:OfflineValuePolicy",
        kind="contextual",
        adaptive=True,
        pretrainable=True,
        description="per-arm ridge model of net value, epsilon-greedy; fitted from a log (train --from-log)",
    ),
    PolicyEntry(
        name="ppo",
        loader="policies.rl:PPOPolicy",
        kind="rl",
        adaptive=True,
        pretrainable=False,
        description="Stable-Baselines3 PPO trained on Campaign-v0 (needs model_path=DIR)",
    ),
    PolicyEntry(
        name="a2c",
        loader="policies.rl:A2CPolicy",
        kind="rl",
        adaptive=True,
        pretrainable=False,
        description="Stable-Baselines3 A2C trained on Campaign-v0 (needs model_path=DIR)",
    ),
    PolicyEntry(
        name="vw",
        loader="policies.peers:VowpalWabbitPolicy",
        kind="peer",
        adaptive=True,
        pretrainable=False,
        description="Vowpal Wabbit's contextual bandit with action-dependent features (peers extra)",
    ),
    PolicyEntry(
        name="mabwiser",
        loader="policies.peers:MABWiserPolicy",
        kind="peer",
        adaptive=True,
        pretrainable=False,
        description="MABWiser's linear contextual bandits, one ridge model per contact arm (peers extra)",
    ),
)
"""Every policy by name, in the order the CLI lists them."""


def names(
    kind: PolicyKind | None = None, *, adaptive: bool | None = None, pretrainable: bool | None = None
) -> tuple[str, ...]:
    """The catalogue's names (in catalogue order) of the given kind, adaptivity and pretrainability
    (``None``: any)."""
    return tuple(
        e.name
        for e in CATALOGUE.values()
        if (kind is None or e.kind == kind)
        and (adaptive is None or e.adaptive == adaptive)
        and (pretrainable is None or e.pretrainable == pretrainable)
    )


class _Classes(Mapping[str, type[Policy]]):
    """Policy classes by name, each imported when first looked up."""

    def __getitem__(self, name: str) -> type[Policy]:
        return CATALOGUE[name].cls

    def __iter__(self) -> Iterator[str]:
        return iter(CATALOGUE)

    def __len__(self) -> int:
        return len(CATALOGUE)

    def __repr__(self) -> str:
        return f"POLICY_CLASSES({list(CATALOGUE)})"


POLICY_NAMES: tuple[str, ...] = tuple(e.spelling for e in CATALOGUE.values())
"""Names accepted by :func:`make_policy` (``ARM`` is an arm name or index); every name but
``fixed`` also takes ``:key=value,...`` hyperparameters."""

POLICY_CLASSES: Mapping[str, type[Policy]] = _Classes()
"""Policy classes by name (imported on lookup)."""

RL_ALGORITHMS: tuple[str, ...] = names("rl")
"""Policies trained with Stable-Baselines3 (their grid keys are SB3 constructor arguments)."""

PRETRAINABLE: tuple[str, ...] = names(pretrainable=True)
"""Learning policies that can be pretrained on simulated campaigns before evaluation."""

NON_ADAPTIVE: tuple[str, ...] = names(adaptive=False)
"""Yardsticks and habits: not ranked as adaptive learners by the benchmark."""

PEERS: tuple[str, ...] = names("peer")
"""Peer libraries run through adapters."""

_LIVE_ARGS = ("self", "simulator", "seed")


class UnknownPolicyError(ValueError):
    """A policy name that is not known; the message lists the known names."""


def _convert(text: str, hint: Any, key: str) -> Any:
    """``text`` as a value of the constructor argument ``key`` annotated ``hint``.

    Raises:
        UnknownPolicyError: ``text`` is not a value of that type, a float is not finite, or the
            argument is not a scalar (lists and mappings cannot be set from a name).
    """
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (Union, UnionType) and len(options) == 1:
        hint = options[0]  # ``float | None`` takes a float
    if typing.get_origin(hint) is Literal:
        if text not in typing.get_args(hint):
            raise UnknownPolicyError(f"{key} takes one of {list(typing.get_args(hint))}, got {text!r}")
        return text
    if hint is bool:
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise UnknownPolicyError(f"{key} takes true or false, got {text!r}")
    if hint is str:
        return text
    if hint not in (int, float):
        raise UnknownPolicyError(f"{key} cannot be set in a policy name")
    try:
        value = hint(text)
    except ValueError:
        kind = "an int" if hint is int else "a float"
        raise UnknownPolicyError(f"{key} takes {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise UnknownPolicyError(f"{key} takes a finite number, got {text!r}")
    return value


def parse_hyperparameters(cls: type[Policy], text: str) -> dict[str, Any]:
    """Parse ``key=value,key=value`` against the constructor of ``cls``.

    Raises:
        UnknownPolicyError: malformed text, unknown key or unconvertible value.
    """
    hints = typing.get_type_hints(cls.__init__)
    params = [k for k in inspect.signature(cls.__init__).parameters if k not in _LIVE_ARGS]
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise UnknownPolicyError(f"hyperparameter {item!r} of {cls.name} is not key=value")
        if key not in params:
            raise UnknownPolicyError(f"{cls.name} has no hyperparameter {key!r}; known: {sorted(params)}")
        out[key] = _convert(value.strip(), hints[key], key)
    return out


def make_policy(name: str, simulator: CustomerSimulator, seed: int | None = None) -> Policy:
    """Build a policy from its CLI name.

    Args:
        name: one of :data:`POLICY_NAMES`, optionally with ``:key=value,...`` hyperparameters
            (``fixed:ARM`` takes an arm name like ``email/bestsellers/none`` or an index).
        simulator: the world (the oracle reads its ground truth; others only its arms).
        seed: the policy's own seed.

    Raises:
        UnknownPolicyError: unknown name, arm or hyperparameter, a hyperparameter value its
            policy refuses (out of range, not finite), or an RL policy without a loadable model.
    """
    if name.startswith("fixed:"):
        arm = name.removeprefix("fixed:")
        try:
            simulator.arms.index(arm)
        except ValueError as err:
            raise UnknownPolicyError(str(err)) from None
        from policies.baselines import FixedPolicy

        return FixedPolicy(int(arm) if arm.isdigit() else arm, seed=seed)
    base, _, params = name.partition(":")
    entry = CATALOGUE.get(base)
    if entry is None or entry.argument:
        raise UnknownPolicyError(f"unknown policy {name!r}; known: {list(POLICY_NAMES)}")
    cls = entry.cls
    kwargs = parse_hyperparameters(cls, params)
    if entry.kind == "rl" and not kwargs.get("model_path"):
        raise UnknownPolicyError(
            f"{base} needs a trained model: {base}:model_path=DIR, with DIR a folder saved by "
            f"`campaign-opt train --policy {base}`"
        )
    if _takes_simulator(cls):  # the yardsticks read the world's truth
        kwargs["simulator"] = simulator
    try:
        return cls(seed=seed, **kwargs)
    except (ValueError, OSError) as err:  # the constructors' own checks, an unloadable model
        raise UnknownPolicyError(str(err)) from None


def _takes_simulator(cls: type[Policy]) -> bool:
    """``cls`` is built and loaded with the live simulator (the oracles)."""
    return "simulator" in inspect.signature(cls.__init__).parameters


_SAVED_FIELDS: dict[str, type] = {"policy": str, "config": dict, "state": dict, "rng": dict}
"""The fields of a ``policy.json`` written by :meth:`Policy.save`, with their JSON types."""


def load_policy(path: str | Path, simulator: CustomerSimulator) -> Policy:
    """Load a policy saved with :meth:`Policy.save`, whatever its class.

    Raises:
        UnknownPolicyError: ``policy.json`` is missing, unreadable, not JSON, lacks a field or has
            one of the wrong type, names an unknown policy, or holds a configuration or state that
            its policy refuses.
    """
    file = Path(path) / "policy.json"
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: not UTF-8 or not JSON
        raise UnknownPolicyError(f"{file} is not a readable policy file: {err}") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), t) for k, t in _SAVED_FIELDS.items()):
        raise UnknownPolicyError(
            f"{file} is not a saved policy: expected a JSON object with a policy name and config, "
            "state and rng objects"
        )
    name = doc["policy"]
    if name not in POLICY_CLASSES:
        raise UnknownPolicyError(f"{path} holds an unknown policy {name!r}; known: {sorted(POLICY_CLASSES)}")
    cls = POLICY_CLASSES[name]
    live = {"simulator": simulator} if _takes_simulator(cls) else {}
    try:
        return cls.load(path, **live)
    except (OSError, KeyError, TypeError, ValueError, IndexError) as err:
        raise UnknownPolicyError(f"{file} does not hold a usable {name} policy: {err!r}") from None
