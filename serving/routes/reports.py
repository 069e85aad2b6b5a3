"""Reports over a campaign's decisions: A/B of its arms, channels, contents, offers or policies,
and the comparison with a previous campaign (JSON and PNG)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from serving.routes.deps import CAMPAIGN_ERRORS, CampaignPath, OwnerId, ServiceDep, errors
from serving.schemas import INT32_MAX

router = APIRouter()

By = Annotated[
    Literal["arm", "channel", "content", "offer", "policy"],
    Query(description="What a group is: arm, channel, content, offer or policy."),
]
Control = Annotated[
    str | None,
    Query(
        max_length=200, description="The control group (default: no contact when present, else the largest)."
    ),
]
Alpha = Annotated[float, Query(gt=0.0, le=0.5, description="Significance level; intervals cover 1 - alpha.")]
Correction = Annotated[
    Literal["holm", "bh"],
    Query(description="Correction of the significance flags (both p-values are reported)."),
]
Margin = Annotated[
    float | None, Query(ge=0.0, le=1.0, description="Profit share of revenue (default: the scenario's).")
]
Previous = Annotated[int, Query(ge=1, le=INT32_MAX, description="The id of the campaign to compare with.")]
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}}}


@router.get("/campaigns/{cid}/reports/ab", tags=["reports"], responses=errors(*CAMPAIGN_ERRORS, 409, 503))
def ab(
    cid: CampaignPath,
    oid: OwnerId,
    svc: ServiceDep,
    by: By = "arm",
    control: Control = None,
    alpha: Alpha = 0.05,
    correction: Correction = "holm",
    margin: Margin = None,
) -> dict[str, Any]:
    """Each group (arm, channel, content, offer or policy) against a control: n, conversions,
    rate (Wilson interval), revenue and net value per customer, cost; differences with
    intervals, p-values, Holm and Benjamini-Hochberg adjusted p-values (409 before any decision)."""
    return svc.ab_report(oid, cid, by, control, alpha, correction, margin)


@router.get("/campaigns/{cid}/reports/rounds", tags=["reports"], responses=errors(*CAMPAIGN_ERRORS, 409, 503))
def rounds(
    cid: CampaignPath,
    oid: OwnerId,
    svc: ServiceDep,
    previous: Previous,
    by: By = "arm",
    alpha: Alpha = 0.05,
    correction: Correction = "holm",
    margin: Margin = None,
) -> dict[str, Any]:
    """This campaign against a previous one of the same owner: conversions, spend, cost per
    conversion, per-customer deltas with intervals, conversion rates by group (404 when either
    campaign is not yours, 409 when one has no decisions)."""
    return svc.rounds_report(oid, cid, previous, by, alpha, correction, margin)


@router.get(
    "/campaigns/{cid}/reports/ab.png",
    tags=["reports"],
    response_class=FileResponse,
    responses={**PNG, **errors(*CAMPAIGN_ERRORS, 409, 503)},
)
def ab_png(
    cid: CampaignPath, oid: OwnerId, svc: ServiceDep, by: By = "arm", control: Control = None
) -> FileResponse:
    return FileResponse(svc.ab_plot(oid, cid, by, control), media_type="image/png")


@router.get(
    "/campaigns/{cid}/reports/rounds.png",
    tags=["reports"],
    response_class=FileResponse,
    responses={**PNG, **errors(*CAMPAIGN_ERRORS, 409, 503)},
)
def rounds_png(
    cid: CampaignPath, oid: OwnerId, svc: ServiceDep, previous: Previous, by: By = "arm"
) -> FileResponse:
    return FileResponse(svc.rounds_plot(oid, cid, previous, by), media_type="image/png")
