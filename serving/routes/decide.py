"""Real-time decisions (listed with the events in the API docs)."""

from __future__ import annotations

from fastapi import APIRouter

from serving.routes.deps import CAMPAIGN_ERRORS, CampaignPath, OwnerId, ServiceDep, errors
from serving.schemas import DecideIn, DecideOut

router = APIRouter(tags=["events"])


@router.post("/campaigns/{cid}/decide", response_model=DecideOut, responses=errors(*CAMPAIGN_ERRORS, 409))
def decide(cid: CampaignPath, body: DecideIn, oid: OwnerId, svc: ServiceDep) -> DecideOut:
    """A real-time decision for one customer, within every cap of the campaign; its worst case
    is reserved before it is returned."""
    return svc.decide(oid, cid, body.customer)
