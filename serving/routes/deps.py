"""What the routes share: the service, the owner behind an API key (rate limited), the path and
query parameter types and the OpenAPI description of error answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi import Path as PathParam

from serving.errors import RateLimitedError
from serving.schemas import INT32_MAX, ErrorOut, ValidationErrorOut
from serving.service import Service
from serving.settings import Settings

CampaignPath = Annotated[int, PathParam(ge=1, le=INT32_MAX, description="The campaign's id.")]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=10_000)]

OWNER_ERRORS = (401, 422, 429)
CAMPAIGN_ERRORS = (401, 404, 422, 429)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error answers of a route."""
    text = {
        401: "no valid API key",
        404: "no such campaign of this owner",
        409: "not allowed in the campaign's state, or the budget cannot hold it",
        422: "an invalid field (``detail[].loc`` names it)",
        429: "rate limit or quota reached (see ``Retry-After``)",
        503: "busy with other expensive requests (see ``Retry-After``)",
    }
    return {c: {"model": ValidationErrorOut if c == 422 else ErrorOut, "description": text[c]} for c in codes}


class UnauthorizedError(Exception):
    """No valid API key (answered 401 by the app)."""


def get_service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key of ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key


def owner_of(request: Request, authorization: str | None, x_api_key: str | None) -> int:
    """The owner id behind the request's API key, after its rate limit.

    Raises:
        UnauthorizedError: no key, or not a valid one.
        RateLimitedError: the owner's rate limit is reached.
    """
    key = api_key(authorization, x_api_key)
    svc = get_service(request)
    oid = svc.authenticate(key) if key else None
    if oid is None:
        raise UnauthorizedError()
    wait = request.app.state.limiter.take(str(oid))
    if wait:
        rate = get_settings(request).rate_per_second
        raise RateLimitedError(f"rate limit: {rate:g} requests per second per owner", wait)
    return oid


def owner(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> int:
    return owner_of(request, authorization, x_api_key)


OwnerId = Annotated[int, Depends(owner)]
ServiceDep = Annotated[Service, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
