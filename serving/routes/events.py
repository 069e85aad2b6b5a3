"""Response events of a campaign's decisions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from serving.routes.deps import CAMPAIGN_ERRORS, CampaignPath, Limit, Offset, OwnerId, ServiceDep, errors
from serving.schemas import EventsIn, EventsResult

router = APIRouter(tags=["events"])


@router.post("/campaigns/{cid}/events", response_model=EventsResult, responses=errors(*CAMPAIGN_ERRORS, 409))
def events(cid: CampaignPath, body: EventsIn, oid: OwnerId, svc: ServiceDep) -> EventsResult:
    """A batch of response events; idempotent by event id; rejected item by item."""
    return svc.ingest_events(oid, cid, body.events)


@router.get("/campaigns/{cid}/events", responses=errors(*CAMPAIGN_ERRORS))
def list_events(
    cid: CampaignPath,
    oid: OwnerId,
    svc: ServiceDep,
    status: Literal["pending", "applied", "rejected"] | None = None,
    offset: Offset = 0,
    limit: Limit = 1000,
) -> list[dict[str, Any]]:
    """Stored events; those of runner decisions are ``pending`` until the next iteration
    applies them (or rejects them with the reason, e.g. a closed attribution window)."""
    return svc.list_events(oid, cid, status, offset, limit)
