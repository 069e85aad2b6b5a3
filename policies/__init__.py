"""Decision policies behind one interface: ``act``, ``update``, ``save``, ``load``.

The names below are loaded on first use (module ``__getattr__``), so that importing a light part
of the package (``policies.base``, as ``agent`` does) does not import the catalogue and with it
the RL policies (gymnasium, torch) and the peers (scipy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.bandits import EpsilonGreedyPolicy, LearningPolicy, ThompsonPolicy, UCBPolicy
    from policies.base import DecisionContext, Decisions, Feedback, Policy
    from policies.baselines import FixedPolicy, OraclePolicy, RandomPolicy
    from policies.budgeted import BudgetedTSPolicy
    from policies.contextual import LinTSPolicy, LinUCBPolicy
    from policies.etc import ExploreThenCommitPolicy
    from policies.knapsack import WaveSolution, solve_wave
    from policies.registry import (
        CATALOGUE,
        POLICY_NAMES,
        PolicyEntry,
        UnknownPolicyError,
        load_policy,
        make_policy,
    )

_HOME: dict[str, tuple[str, ...]] = {
    "bandits": ("EpsilonGreedyPolicy", "LearningPolicy", "ThompsonPolicy", "UCBPolicy"),
    "base": ("DecisionContext", "Decisions", "Feedback", "Policy"),
    "baselines": ("FixedPolicy", "OraclePolicy", "RandomPolicy"),
    "budgeted": ("BudgetedTSPolicy",),
    "contextual": ("LinTSPolicy", "LinUCBPolicy"),
    "etc": ("ExploreThenCommitPolicy",),
    "knapsack": ("WaveSolution", "solve_wave"),
    "registry": (
        "CATALOGUE",
        "POLICY_NAMES",
        "PolicyEntry",
        "UnknownPolicyError",
        "load_policy",
        "make_policy",
    ),
}
"""The module of this package each public name lives in."""
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = [
    "CATALOGUE",
    "POLICY_NAMES",
    "BudgetedTSPolicy",
    "DecisionContext",
    "Decisions",
    "EpsilonGreedyPolicy",
    "ExploreThenCommitPolicy",
    "Feedback",
    "FixedPolicy",
    "LearningPolicy",
    "LinTSPolicy",
    "LinUCBPolicy",
    "OraclePolicy",
    "Policy",
    "PolicyEntry",
    "RandomPolicy",
    "ThompsonPolicy",
    "UCBPolicy",
    "UnknownPolicyError",
    "WaveSolution",
    "load_policy",
    "make_policy",
    "solve_wave",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    home = _MODULE_OF.get(name)
    if home is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"policies.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
