"""Policy names as used on the CLI and in configs, and their factories."""

from __future__ import annotations

from pathlib import Path

from policies.base import Policy
from policies.baselines import FixedPolicy, OraclePolicy, RandomPolicy
from simulators.types import CustomerSimulator

POLICY_NAMES: tuple[str, ...] = ("random", "fixed:ARM", "oracle")
"""Names accepted by :func:`make_policy` (``ARM`` is an arm name or index)."""


class UnknownPolicyError(ValueError):
    """A policy name that is not known; the message lists the known names."""


def make_policy(name: str, simulator: CustomerSimulator, seed: int | None = None) -> Policy:
    """Build a policy from its CLI name.

    Args:
        name: ``random``, ``fixed:ARM`` (arm name like ``email/bestsellers/none`` or index) or
            ``oracle``.
        simulator: the world (the oracle reads its ground truth; others only its arms).
        seed: the policy's own seed.

    Raises:
        UnknownPolicyError: unknown name or arm.
    """
    if name == "random":
        return RandomPolicy(seed=seed)
    if name == "oracle":
        return OraclePolicy(simulator, seed=seed)
    if name.startswith("fixed:"):
        arm = name.removeprefix("fixed:")
        try:
            simulator.arms.index(arm)
        except ValueError as err:
            raise UnknownPolicyError(str(err)) from None
        return FixedPolicy(int(arm) if arm.isdigit() else arm, seed=seed)
    raise UnknownPolicyError(f"unknown policy {name!r}; known: {list(POLICY_NAMES)}")


def load_policy(path: str | Path, simulator: CustomerSimulator) -> Policy:
    """Load a policy saved with :meth:`Policy.save`, whatever its class."""
    import json

    doc = json.loads((Path(path) / "policy.json").read_text(encoding="utf-8"))
    classes: dict[str, type[Policy]] = {c.name: c for c in (RandomPolicy, FixedPolicy, OraclePolicy)}
    name = doc.get("policy")
    if name not in classes:
        raise UnknownPolicyError(f"{path} holds an unknown policy {name!r}; known: {sorted(classes)}")
    if name == "oracle":
        return OraclePolicy.load(path, simulator=simulator)
    return classes[name].load(path)
