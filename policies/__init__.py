"""Decision policies behind one interface: ``act``, ``update``, ``save``, ``load``."""

from policies.base import DecisionContext, Decisions, Feedback, Policy
from policies.baselines import FixedPolicy, OraclePolicy, RandomPolicy
from policies.registry import POLICY_NAMES, UnknownPolicyError, load_policy, make_policy

__all__ = [
    "POLICY_NAMES",
    "DecisionContext",
    "Decisions",
    "Feedback",
    "FixedPolicy",
    "OraclePolicy",
    "Policy",
    "RandomPolicy",
    "UnknownPolicyError",
    "load_policy",
    "make_policy",
]
