"""The campaign owners' HTTP API (FastAPI). Routes are thin: the logic is in
:mod:`serving.service` (database, money) and :mod:`agent` (the campaign).

Run it with ``campaign-opt serve``; the OpenAPI docs are at ``/docs``.
"""

import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.status import HTTP_401_UNAUTHORIZED

from serving.schemas import (
    CampaignCreate,
    CampaignPublic,
    CampaignUpdate,
    DecideIn,
    DecideOut,
    EventsIn,
    EventsResult,
    Transition,
)
from serving.service import Runner, Service, ServiceError
from serving.settings import Settings, settings_from_env


class _UnauthorizedError(Exception):
    pass


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The application; the database is migrated and the runner started when it starts up."""
    settings = settings or settings_from_env()
    svc = service or Service(settings)
    runner = Runner(svc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.migrate()
        if settings.run_worker:
            runner.start()
        yield
        runner.stop()

    app = FastAPI(
        title="campaign-optimizer",
        version="0.1.0",
        summary="Set a goal and a budget; the agent runs the campaign until one of them is reached.",
        lifespan=lifespan,
    )
    app.state.service, app.state.runner = svc, runner
    metrics = _Metrics(svc)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, err: ServiceError) -> JSONResponse:
        if err.status == 422:
            field = err.field or ["body"]
            loc = field if field[0] in ("body", "query", "path") else ["body", *field]
            return JSONResponse({"detail": [{"loc": loc, "msg": err.message, "type": "value_error"}]}, 422)
        return JSONResponse({"detail": err.message}, err.status)

    @app.exception_handler(_UnauthorizedError)
    async def _unauthorized(request: Request, err: _UnauthorizedError) -> JSONResponse:
        return JSONResponse(
            {"detail": "missing or unknown API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"},
            HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.middleware("http")
    async def _timing(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.observe(
            request.method,
            getattr(route, "path", "unmatched"),
            response.status_code,
            time.perf_counter() - start,
        )
        return response

    def owner(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> int:
        key = x_api_key
        if authorization and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        oid = svc.authenticate(key) if key else None
        if oid is None:
            raise _UnauthorizedError()
        return oid

    Owner = Annotated[int, Depends(owner)]

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        """Liveness and the database in use."""
        svc.status_counts()
        return {"status": "ok", "database": svc.engine.dialect.name, "worker": settings.run_worker}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def metrics_text() -> PlainTextResponse:
        """Prometheus text format."""
        body, ctype = metrics.render()
        return PlainTextResponse(body, media_type=ctype)

    @app.get("/policies", tags=["policies"])
    def policies(_: Owner) -> dict[str, Any]:
        """Built-in policies, trained ones saved in the data folder, and registered models."""
        from policies import POLICY_NAMES

        folder = settings.data_dir / "policies"
        saved = (
            sorted(f"saved:{p.parent.name}" for p in folder.glob("*/policy.json")) if folder.is_dir() else []
        )
        registered: list[dict[str, Any]] = []
        # Only an existing store is read: listing must not create an MLflow database.
        if os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns/mlflow.db").is_file():
            try:
                from serving.registry import list_registered

                registered = list_registered()
            except Exception as err:
                registered = [{"error": f"registry unavailable: {type(err).__name__}"}]
        return {"builtin": list(POLICY_NAMES), "saved": saved, "registered": registered}

    @app.post("/campaigns", status_code=201, response_model=CampaignPublic, tags=["campaigns"])
    def create(body: CampaignCreate, oid: Owner) -> dict[str, Any]:
        """Create a campaign (status ``ready``); start it with ``POST /campaigns/{id}/start``."""
        return svc.create_campaign(oid, body)

    @app.get("/campaigns", response_model=list[CampaignPublic], tags=["campaigns"])
    def list_(
        oid: Owner,
        status: Literal["ready", "running", "paused", "completed", "cancelled"] | None = None,
    ) -> list[dict[str, Any]]:
        return svc.list_campaigns(oid, status)

    @app.get("/campaigns/{cid}", response_model=CampaignPublic, tags=["campaigns"])
    def get(cid: int, oid: Owner) -> dict[str, Any]:
        return svc.get(oid, cid)

    @app.patch("/campaigns/{cid}", response_model=CampaignPublic, tags=["campaigns"])
    def patch(cid: int, body: CampaignUpdate, oid: Owner) -> dict[str, Any]:
        """Change budget, goal, caps or allowed arms between iterations (audited, all or nothing)."""
        return svc.modify(oid, cid, body)

    for action in ("start", "pause", "resume", "cancel"):

        def transition(
            cid: int, oid: Owner, body: Transition | None = None, _action: str = action
        ) -> dict[str, Any]:
            return svc.transition(oid, cid, _action, (body or Transition()).reason)

        app.post(
            f"/campaigns/{{cid}}/{action}",
            response_model=CampaignPublic,
            tags=["lifecycle"],
            summary=f"{action.capitalize()} a campaign (409 with the reason when not allowed)",
        )(transition)

    @app.get("/campaigns/{cid}/report", tags=["reports"])
    def report(cid: int, oid: Owner) -> dict[str, Any]:
        return svc.report(oid, cid)

    @app.get("/campaigns/{cid}/report.png", tags=["reports"], response_class=FileResponse)
    def report_png(cid: int, oid: Owner) -> FileResponse:
        return FileResponse(svc.plot(oid, cid), media_type="image/png")

    @app.get("/campaigns/{cid}/iterations", tags=["reports"])
    def iterations(
        cid: int,
        oid: Owner,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        return svc.iterations(oid, cid, offset, limit)

    @app.get("/campaigns/{cid}/audit", tags=["reports"])
    def audit(cid: int, oid: Owner) -> list[dict[str, Any]]:
        return svc.audit_log(oid, cid)

    @app.get("/campaigns/{cid}/alerts", tags=["reports"])
    def alerts(cid: int, oid: Owner) -> list[dict[str, Any]]:
        return svc.alerts(oid, cid)

    @app.get("/campaigns/{cid}/forecast", tags=["reports"])
    def forecast(cid: int, oid: Owner, runs: Annotated[int, Query(ge=1, le=50)] = 5) -> dict[str, Any]:
        """Before launch: cost to goal and the chance to reach it, from simulated campaigns."""
        return svc.forecast(oid, cid, runs)

    @app.post("/campaigns/{cid}/events", response_model=EventsResult, tags=["events"])
    def events(cid: int, body: EventsIn, oid: Owner) -> EventsResult:
        """A batch of response events; idempotent by event id; rejected item by item."""
        return svc.ingest_events(oid, cid, body.events)

    @app.get("/campaigns/{cid}/events", tags=["events"])
    def list_events(
        cid: int,
        oid: Owner,
        status: Literal["pending", "applied", "rejected"] | None = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """Stored events; those of runner decisions are ``pending`` until the next iteration
        applies them (or rejects them with the reason, e.g. a closed attribution window)."""
        return svc.list_events(oid, cid, status, offset, limit)

    @app.post("/campaigns/{cid}/decide", response_model=DecideOut, tags=["events"])
    def decide(cid: int, body: DecideIn, oid: Owner) -> DecideOut:
        """A real-time decision for one customer; its worst case is reserved before it is returned."""
        return svc.decide(oid, cid, body.customer)

    return app


class _Metrics:
    """Prometheus metrics in a registry of this app (nothing global, nothing at import)."""

    def __init__(self, svc: Service) -> None:
        from prometheus_client import CollectorRegistry, Histogram
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "campaign_opt_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5),
        )

        class _Collector:
            def collect(self) -> Iterator[Any]:
                for name, value in svc.counters.items():
                    c = CounterMetricFamily(
                        f"campaign_opt_{name.removesuffix('_total')}", name.replace("_", " ")
                    )
                    c.add_metric([], value)
                    yield c
                g = GaugeMetricFamily("campaign_opt_campaigns", "campaigns by status", labels=["status"])
                for status, n in svc.status_counts().items():
                    g.add_metric([status], n)
                yield g

        self.registry.register(_Collector())

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
