"""Policy names as used on the CLI and in configs, and their factories.

A name is ``NAME`` or ``NAME:key=value,key=value`` to set hyperparameters (constructor
arguments, e.g. ``epsilon_greedy:epsilon=0.05`` or ``budgeted_ts:pace=1.2,explore=0.5``); values
are converted to the argument's annotated type (floats must be finite) and checked by the policy's
constructor. ``fixed:ARM`` takes an arm instead.
"""

from __future__ import annotations

import inspect
import json
import math
import typing
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union

from policies.bandits import EpsilonGreedyPolicy, ThompsonPolicy, UCBPolicy
from policies.base import Policy
from policies.baselines import FixedPolicy, OraclePolicy, RandomPolicy
from policies.budgeted import BudgetedTSPolicy
from policies.contextual import LinTSPolicy, LinUCBPolicy
from policies.etc import ExploreThenCommitPolicy
from policies.feature_oracle import FeatureOraclePolicy
from policies.funnel import FunnelTSPolicy
from policies.peers import MABWiserPolicy, VowpalWabbitPolicy
from policies.rl import A2CPolicy, PPOPolicy, SB3Policy
from simulators.types import CustomerSimulator

POLICY_NAMES: tuple[str, ...] = (
    "random",
    "fixed:ARM",
    "oracle",
    "feature_oracle",
    "explore_then_commit",
    "epsilon_greedy",
    "ucb",
    "thompson",
    "lin_ucb",
    "lin_ts",
    "budgeted_ts",
    "funnel_ts",
    "ppo",
    "a2c",
    "vw",
    "mabwiser",
)
"""Names accepted by :func:`make_policy` (``ARM`` is an arm name or index); every name but
``fixed`` also takes ``:key=value,...`` hyperparameters."""

POLICY_CLASSES: dict[str, type[Policy]] = {
    c.name: c
    for c in (
        RandomPolicy,
        FixedPolicy,
        OraclePolicy,
        FeatureOraclePolicy,
        ExploreThenCommitPolicy,
        EpsilonGreedyPolicy,
        UCBPolicy,
        ThompsonPolicy,
        LinUCBPolicy,
        LinTSPolicy,
        BudgetedTSPolicy,
        FunnelTSPolicy,
        PPOPolicy,
        A2CPolicy,
        VowpalWabbitPolicy,
        MABWiserPolicy,
    )
}
"""Policy classes by name."""

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
        return FixedPolicy(int(arm) if arm.isdigit() else arm, seed=seed)
    base, _, params = name.partition(":")
    cls = POLICY_CLASSES.get(base)
    if cls is None or cls is FixedPolicy:
        raise UnknownPolicyError(f"unknown policy {name!r}; known: {list(POLICY_NAMES)}")
    kwargs = parse_hyperparameters(cls, params)
    if issubclass(cls, SB3Policy) and not kwargs.get("model_path"):
        raise UnknownPolicyError(
            f"{base} needs a trained model: {base}:model_path=DIR, with DIR a folder saved by "
            f"`campaign-opt train --policy {base}`"
        )
    try:
        if cls is OraclePolicy:
            return OraclePolicy(simulator, seed=seed, **kwargs)
        if cls is FeatureOraclePolicy:
            return FeatureOraclePolicy(simulator, seed=seed, **kwargs)
        return cls(seed=seed, **kwargs)
    except (ValueError, OSError) as err:  # the constructors' own checks, an unloadable model
        raise UnknownPolicyError(str(err)) from None


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
    try:
        if name == "oracle":
            return OraclePolicy.load(path, simulator=simulator)
        if name == "feature_oracle":
            return FeatureOraclePolicy.load(path, simulator=simulator)
        return POLICY_CLASSES[name].load(path)
    except (OSError, KeyError, TypeError, ValueError, IndexError) as err:
        raise UnknownPolicyError(f"{file} does not hold a usable {name} policy: {err!r}") from None
