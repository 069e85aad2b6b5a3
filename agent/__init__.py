"""The campaign loop: spec, budget ledger, stop rules and reports.

Example:
    >>> from agent import BudgetLedger
    >>> BudgetLedger(10.0).available
    10.0
"""

from agent.control import Alert, AuditRecord, CampaignUpdate, EventIn, IngestResult
from agent.ledger import BudgetLedger, InsufficientBudgetError, LedgerError
from agent.loop import Campaign, CampaignError
from agent.report import CampaignReport, DecisionLog, IterationRecord
from agent.spec import CampaignSpec, Goal

__all__ = [
    "Alert",
    "AuditRecord",
    "BudgetLedger",
    "Campaign",
    "CampaignError",
    "CampaignReport",
    "CampaignSpec",
    "CampaignUpdate",
    "DecisionLog",
    "EventIn",
    "Goal",
    "IngestResult",
    "InsufficientBudgetError",
    "IterationRecord",
    "LedgerError",
]
