"""The serving logic between the routes and the agent, as one :class:`Service` made of the
services by job, each in its module over the store:

==================================  ==============================================================
:mod:`serving.store`                the database, snapshots, leases and crash safety, the commit
:mod:`serving.settlement`           the money rules of :mod:`simulators.money` in SQL (reserve,
                                    settle once, release, book), one conditional UPDATE each
:mod:`serving.keys`                 API keys and owners
:mod:`serving.channels`             a campaign's policy and channel (webhook checks, secrets)
:mod:`serving.campaigns`            create, read, report, forecast; the owner's changes
:mod:`serving.decide`               real-time decisions (``/decide``), batched
:mod:`serving.events`               response events, settled or applied exactly once
:mod:`serving.runner`               the live runner's iterations and the background :class:`Runner`
==================================  ==============================================================

The routes (:mod:`serving.app`) and the command line use :class:`Service`; the names they import
from here (errors, ``DECIDE_ID_BASE``, ``hash_key``, ``Runner``) are re-exported.
"""

from __future__ import annotations

from serving.audience_service import AudiencesMixin
from serving.campaigns import CampaignsMixin
from serving.channels import CHANNEL_FAILED
from serving.decide import DECIDE_CACHE_CAMPAIGNS, DecideMixin
from serving.errors import (
    BusyError,
    ConflictError,
    InvalidError,
    NotFoundError,
    RateLimitedError,
    ServiceError,
)
from serving.events import EventsMixin
from serving.keys import KeysMixin, hash_key
from serving.reports import ReportsMixin
from serving.runner import Runner, RunnerMixin
from serving.settlement import DECIDE_ID_BASE

__all__ = [
    "CHANNEL_FAILED",
    "DECIDE_CACHE_CAMPAIGNS",
    "DECIDE_ID_BASE",
    "BusyError",
    "ConflictError",
    "InvalidError",
    "NotFoundError",
    "RateLimitedError",
    "Runner",
    "Service",
    "ServiceError",
    "hash_key",
]


class Service(KeysMixin, CampaignsMixin, DecideMixin, EventsMixin, RunnerMixin, AudiencesMixin, ReportsMixin):
    """Everything the API and the runner do, on one database.

    Args:
        settings: where the database and data folder are, lease and poll times.
        engine: an engine to use instead of one made from ``settings.database_url`` (tests).
    """
