"""Policy names as used on the CLI and in configs, and their factories.

A name is ``NAME`` or ``NAME:key=value,key=value`` to set hyperparameters (constructor
arguments, e.g. ``epsilon_greedy:epsilon=0.05`` or ``budgeted_ts:pace=1.2,explore=0.5``); values
are converted to the type of the argument's default. ``fixed:ARM`` takes an arm instead.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from policies.bandits import EpsilonGreedyPolicy, ThompsonPolicy, UCBPolicy
from policies.base import Policy
from policies.baselines import FixedPolicy, OraclePolicy, RandomPolicy
from policies.budgeted import BudgetedTSPolicy
from policies.contextual import LinTSPolicy, LinUCBPolicy
from policies.etc import ExploreThenCommitPolicy
from policies.peers import MABWiserPolicy, VowpalWabbitPolicy
from policies.rl import A2CPolicy, PPOPolicy
from simulators.types import CustomerSimulator

POLICY_NAMES: tuple[str, ...] = (
    "random",
    "fixed:ARM",
    "oracle",
    "explore_then_commit",
    "epsilon_greedy",
    "ucb",
    "thompson",
    "lin_ucb",
    "lin_ts",
    "budgeted_ts",
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
        ExploreThenCommitPolicy,
        EpsilonGreedyPolicy,
        UCBPolicy,
        ThompsonPolicy,
        LinUCBPolicy,
        LinTSPolicy,
        BudgetedTSPolicy,
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


def _convert(text: str, default: Any, key: str) -> Any:
    if isinstance(default, bool):
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise UnknownPolicyError(f"{key} takes true or false, got {text!r}")
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise UnknownPolicyError(f"{key} takes a {type(default).__name__}, got {text!r}") from None
    return text


def parse_hyperparameters(cls: type[Policy], text: str) -> dict[str, Any]:
    """Parse ``key=value,key=value`` against the constructor of ``cls``.

    Raises:
        UnknownPolicyError: malformed text, unknown key or unconvertible value.
    """
    params = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k not in _LIVE_ARGS}
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise UnknownPolicyError(f"hyperparameter {item!r} of {cls.name} is not key=value")
        if key not in params:
            raise UnknownPolicyError(f"{cls.name} has no hyperparameter {key!r}; known: {sorted(params)}")
        default = params[key].default
        out[key] = _convert(value.strip(), default, key) if default is not inspect.Parameter.empty else value
    return out


def make_policy(name: str, simulator: CustomerSimulator, seed: int | None = None) -> Policy:
    """Build a policy from its CLI name.

    Args:
        name: one of :data:`POLICY_NAMES`, optionally with ``:key=value,...`` hyperparameters
            (``fixed:ARM`` takes an arm name like ``email/bestsellers/none`` or an index).
        simulator: the world (the oracle reads its ground truth; others only its arms).
        seed: the policy's own seed.

    Raises:
        UnknownPolicyError: unknown name, arm or hyperparameter.
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
    if cls is OraclePolicy:
        return OraclePolicy(simulator, seed=seed, **kwargs)
    return cls(seed=seed, **kwargs)


def load_policy(path: str | Path, simulator: CustomerSimulator) -> Policy:
    """Load a policy saved with :meth:`Policy.save`, whatever its class."""
    doc = json.loads((Path(path) / "policy.json").read_text(encoding="utf-8"))
    name = doc.get("policy")
    if name not in POLICY_CLASSES:
        raise UnknownPolicyError(f"{path} holds an unknown policy {name!r}; known: {sorted(POLICY_CLASSES)}")
    if name == "oracle":
        return OraclePolicy.load(path, simulator=simulator)
    return POLICY_CLASSES[name].load(path)
