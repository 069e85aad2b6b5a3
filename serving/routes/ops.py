"""Operations: liveness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import PlainTextResponse

from serving.routes.deps import ServiceDep, SettingsDep, UnauthorizedError, api_key, errors, owner_of

router = APIRouter(tags=["service"])


@router.get("/healthz")
def healthz(svc: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """Liveness and the database in use."""
    svc.status_counts()
    return {"status": "ok", "database": svc.engine.dialect.name, "worker": settings.run_worker}


@router.get("/metrics", response_class=PlainTextResponse, responses=errors(401, 429))
def metrics_text(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> PlainTextResponse:
    """Prometheus text format; needs the configured metrics token, or an API key when none is set."""
    key = api_key(authorization, x_api_key)
    if settings.metrics_token is not None:
        if key != settings.metrics_token:
            raise UnauthorizedError()
    else:
        owner_of(request, authorization, x_api_key)
    body, ctype = request.app.state.metrics.render()
    return PlainTextResponse(body, media_type=ctype)
