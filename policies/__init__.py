"""Decision policies behind one interface: ``act``, ``update``, ``save``, ``load``."""

from policies.bandits import EpsilonGreedyPolicy, LearningPolicy, ThompsonPolicy, UCBPolicy
from policies.base import DecisionContext, Decisions, Feedback, Policy
from policies.baselines import FixedPolicy, OraclePolicy, RandomPolicy
from policies.budgeted import BudgetedTSPolicy
from policies.contextual import LinTSPolicy, LinUCBPolicy
from policies.etc import ExploreThenCommitPolicy
from policies.knapsack import WaveSolution, solve_wave
from policies.registry import POLICY_NAMES, UnknownPolicyError, load_policy, make_policy

__all__ = [
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
    "RandomPolicy",
    "ThompsonPolicy",
    "UCBPolicy",
    "UnknownPolicyError",
    "WaveSolution",
    "load_policy",
    "make_policy",
    "solve_wave",
]
