"""Campaigns: create, list, read, change, the lifecycle (start, pause, resume, cancel) and reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from serving.routes.deps import (
    CAMPAIGN_ERRORS,
    OWNER_ERRORS,
    CampaignPath,
    Limit,
    Offset,
    OwnerId,
    ServiceDep,
    errors,
)
from serving.schemas import MAX_FORECAST_RUNS, CampaignCreate, CampaignPublic, CampaignUpdate, Transition

router = APIRouter()


@router.post(
    "/campaigns",
    status_code=201,
    response_model=CampaignPublic,
    tags=["campaigns"],
    responses=errors(*OWNER_ERRORS, 503),
)
def create(body: CampaignCreate, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    """Create a campaign (status ``ready``); start it with ``POST /campaigns/{id}/start``.

    At most ``max_active_campaigns`` per owner may be ready, running or paused (429 beyond)."""
    return svc.create_campaign(oid, body)


@router.get(
    "/campaigns",
    response_model=list[CampaignPublic],
    tags=["campaigns"],
    responses=errors(*OWNER_ERRORS),
)
def list_(
    oid: OwnerId,
    svc: ServiceDep,
    status: Literal["ready", "running", "paused", "completed", "cancelled"] | None = None,
) -> list[dict[str, Any]]:
    return svc.list_campaigns(oid, status)


@router.get(
    "/campaigns/{cid}",
    response_model=CampaignPublic,
    tags=["campaigns"],
    responses=errors(*CAMPAIGN_ERRORS),
)
def get(cid: CampaignPath, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    return svc.get(oid, cid)


@router.patch(
    "/campaigns/{cid}",
    response_model=CampaignPublic,
    tags=["campaigns"],
    responses=errors(*CAMPAIGN_ERRORS, 409),
)
def patch(cid: CampaignPath, body: CampaignUpdate, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    """Change budget, goal, caps or allowed arms between iterations (audited, all or nothing)."""
    return svc.modify(oid, cid, body)


def _transition(action: str) -> Callable[..., dict[str, Any]]:
    def transition(
        cid: CampaignPath, oid: OwnerId, svc: ServiceDep, body: Transition | None = None
    ) -> dict[str, Any]:
        return svc.transition(oid, cid, action, (body or Transition()).reason)

    return transition


for _action in ("start", "pause", "resume", "cancel"):
    router.post(
        f"/campaigns/{{cid}}/{_action}",
        response_model=CampaignPublic,
        tags=["lifecycle"],
        summary=f"{_action.capitalize()} a campaign (409 with the reason when not allowed)",
        responses=errors(*CAMPAIGN_ERRORS, 409),
        operation_id=f"{_action}_campaign",
    )(_transition(_action))


@router.get("/campaigns/{cid}/report", tags=["reports"], responses=errors(*CAMPAIGN_ERRORS))
def report(cid: CampaignPath, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    return svc.report(oid, cid)


@router.get(
    "/campaigns/{cid}/report.png",
    tags=["reports"],
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, **errors(*CAMPAIGN_ERRORS, 503)},
)
def report_png(cid: CampaignPath, oid: OwnerId, svc: ServiceDep) -> FileResponse:
    return FileResponse(svc.plot(oid, cid), media_type="image/png")


@router.get("/campaigns/{cid}/iterations", tags=["reports"], responses=errors(*CAMPAIGN_ERRORS))
def iterations(
    cid: CampaignPath, oid: OwnerId, svc: ServiceDep, offset: Offset = 0, limit: Limit = 1000
) -> list[dict[str, Any]]:
    return svc.iterations(oid, cid, offset, limit)


@router.get("/campaigns/{cid}/audit", tags=["reports"], responses=errors(*CAMPAIGN_ERRORS))
def audit(cid: CampaignPath, oid: OwnerId, svc: ServiceDep) -> list[dict[str, Any]]:
    return svc.audit_log(oid, cid)


@router.get("/campaigns/{cid}/alerts", tags=["reports"], responses=errors(*CAMPAIGN_ERRORS))
def alerts(cid: CampaignPath, oid: OwnerId, svc: ServiceDep) -> list[dict[str, Any]]:
    return svc.alerts(oid, cid)


@router.get("/campaigns/{cid}/forecast", tags=["reports"], responses=errors(*CAMPAIGN_ERRORS, 409, 503))
def forecast(
    cid: CampaignPath,
    oid: OwnerId,
    svc: ServiceDep,
    runs: Annotated[int, Query(ge=1, le=MAX_FORECAST_RUNS)] = 5,
) -> dict[str, Any]:
    """Cost to goal and the chance to reach it within the budget.

    Before launch (``kind: simulated``): from ``runs`` simulated campaigns; expensive, a server
    runs ``heavy_workers`` of these at once (503 with ``Retry-After`` when busy). Once the campaign
    runs, or on an owner's audience (``kind: pace``): from its own results, at its recent pace
    ("goal at wave N for $X; P(goal within budget) = p; to reach it, add $Y or lower the target
    to Z")."""
    return svc.forecast(oid, cid, runs)
