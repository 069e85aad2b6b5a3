"""The campaign owners' HTTP API (FastAPI). Routes are thin: the logic is in
:mod:`serving.service` (database, money) and :mod:`agent` (the campaign).

Run it with ``campaign-opt serve``; the OpenAPI docs are at ``/docs``.
"""

import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.status import HTTP_401_UNAUTHORIZED

from serving.schemas import (
    INT32_MAX,
    MAX_FORECAST_RUNS,
    CampaignCreate,
    CampaignPublic,
    CampaignUpdate,
    DecideIn,
    DecideOut,
    ErrorOut,
    EventsIn,
    EventsResult,
    Transition,
    ValidationErrorOut,
)
from serving.service import RateLimitedError, Runner, Service, ServiceError
from serving.settings import Settings, settings_from_env

CampaignPath = Annotated[int, PathParam(ge=1, le=INT32_MAX, description="The campaign's id.")]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as ``None`` (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a non-finite number (e.g. one stored before the edge checked
    them) is written as ``null`` instead of failing the response with a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except ValueError:
            return super().render(_finite(content))


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
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


OWNER_ERRORS = (401, 422, 429)
CAMPAIGN_ERRORS = (401, 404, 422, 429)


class _UnauthorizedError(Exception):
    pass


class _RateLimiter:
    """A token bucket per owner, all its keys together (this process): ``burst`` requests at
    once, then ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token; returns 0, or the seconds until one is available (nothing taken)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            self._buckets[key] = (tokens - 1, now)
            return 0.0


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The application; the database is migrated and the runner started when it starts up."""
    settings = settings or settings_from_env()
    svc = service or Service(settings)
    runner = Runner(svc)
    limiter = _RateLimiter(settings.rate_per_second, settings.rate_burst)

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
        default_response_class=SafeJSONResponse,
    )
    app.state.service, app.state.runner = svc, runner
    metrics = _Metrics(svc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        # Only where and why: the offending value is never echoed (it may not even be encodable).
        detail = [
            {
                "loc": [x if isinstance(x, int) else str(x) for x in e.get("loc", ())],
                "msg": str(e.get("msg", "invalid")).encode("utf-8", "replace").decode(),
                "type": str(e.get("type", "value_error")),
            }
            for e in err.errors()
        ]
        return JSONResponse({"detail": detail}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Any:
        if err.status_code == 400:  # a body that cannot be read as JSON: an invalid body like any other
            msg = "the body is not valid JSON (UTF-8)"
            return JSONResponse({"detail": [{"loc": ["body"], "msg": msg, "type": "json_invalid"}]}, 422)
        return await http_exception_handler(request, err)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, err: ServiceError) -> JSONResponse:
        if err.status == 422:
            field = err.field or ["body"]
            loc = field if field[0] in ("body", "query", "path") else ["body", *field]
            return JSONResponse({"detail": [{"loc": loc, "msg": err.message, "type": "value_error"}]}, 422)
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
        return JSONResponse({"detail": err.message}, err.status, headers=headers)

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

    def _key(authorization: str | None, x_api_key: str | None) -> str | None:
        if authorization and authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        return x_api_key

    def owner(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> int:
        key = _key(authorization, x_api_key)
        oid = svc.authenticate(key) if key else None
        if oid is None:
            raise _UnauthorizedError()
        wait = limiter.take(str(oid))
        if wait:
            raise RateLimitedError(
                f"rate limit: {settings.rate_per_second:g} requests per second per owner", wait
            )
        return oid

    Owner = Annotated[int, Depends(owner)]

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        """Liveness and the database in use."""
        svc.status_counts()
        return {"status": "ok", "database": svc.engine.dialect.name, "worker": settings.run_worker}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse, responses=_errors(401, 429))
    def metrics_text(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> PlainTextResponse:
        """Prometheus text format; needs the configured metrics token, or an API key when none is set."""
        key = _key(authorization, x_api_key)
        if settings.metrics_token is not None:
            if key != settings.metrics_token:
                raise _UnauthorizedError()
        else:
            owner(authorization, x_api_key)
        body, ctype = metrics.render()
        return PlainTextResponse(body, media_type=ctype)

    @app.get("/policies", tags=["policies"], responses=_errors(*OWNER_ERRORS))
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

    @app.post(
        "/campaigns",
        status_code=201,
        response_model=CampaignPublic,
        tags=["campaigns"],
        responses=_errors(*OWNER_ERRORS, 503),
    )
    def create(body: CampaignCreate, oid: Owner) -> dict[str, Any]:
        """Create a campaign (status ``ready``); start it with ``POST /campaigns/{id}/start``.

        At most ``max_active_campaigns`` per owner may be ready, running or paused (429 beyond)."""
        return svc.create_campaign(oid, body)

    @app.get(
        "/campaigns",
        response_model=list[CampaignPublic],
        tags=["campaigns"],
        responses=_errors(*OWNER_ERRORS),
    )
    def list_(
        oid: Owner,
        status: Literal["ready", "running", "paused", "completed", "cancelled"] | None = None,
    ) -> list[dict[str, Any]]:
        return svc.list_campaigns(oid, status)

    @app.get(
        "/campaigns/{cid}",
        response_model=CampaignPublic,
        tags=["campaigns"],
        responses=_errors(*CAMPAIGN_ERRORS),
    )
    def get(cid: CampaignPath, oid: Owner) -> dict[str, Any]:
        return svc.get(oid, cid)

    @app.patch(
        "/campaigns/{cid}",
        response_model=CampaignPublic,
        tags=["campaigns"],
        responses=_errors(*CAMPAIGN_ERRORS, 409),
    )
    def patch(cid: CampaignPath, body: CampaignUpdate, oid: Owner) -> dict[str, Any]:
        """Change budget, goal, caps or allowed arms between iterations (audited, all or nothing)."""
        return svc.modify(oid, cid, body)

    def _transition(action: str) -> Callable[..., dict[str, Any]]:
        def transition(cid: CampaignPath, oid: Owner, body: Transition | None = None) -> dict[str, Any]:
            return svc.transition(oid, cid, action, (body or Transition()).reason)

        return transition

    for action in ("start", "pause", "resume", "cancel"):
        app.post(
            f"/campaigns/{{cid}}/{action}",
            response_model=CampaignPublic,
            tags=["lifecycle"],
            summary=f"{action.capitalize()} a campaign (409 with the reason when not allowed)",
            responses=_errors(*CAMPAIGN_ERRORS, 409),
            operation_id=f"{action}_campaign",
        )(_transition(action))

    @app.get("/campaigns/{cid}/report", tags=["reports"], responses=_errors(*CAMPAIGN_ERRORS))
    def report(cid: CampaignPath, oid: Owner) -> dict[str, Any]:
        return svc.report(oid, cid)

    @app.get(
        "/campaigns/{cid}/report.png",
        tags=["reports"],
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **_errors(*CAMPAIGN_ERRORS, 503)},
    )
    def report_png(cid: CampaignPath, oid: Owner) -> FileResponse:
        return FileResponse(svc.plot(oid, cid), media_type="image/png")

    @app.get("/campaigns/{cid}/iterations", tags=["reports"], responses=_errors(*CAMPAIGN_ERRORS))
    def iterations(
        cid: CampaignPath, oid: Owner, offset: Offset = 0, limit: Limit = 1000
    ) -> list[dict[str, Any]]:
        return svc.iterations(oid, cid, offset, limit)

    @app.get("/campaigns/{cid}/audit", tags=["reports"], responses=_errors(*CAMPAIGN_ERRORS))
    def audit(cid: CampaignPath, oid: Owner) -> list[dict[str, Any]]:
        return svc.audit_log(oid, cid)

    @app.get("/campaigns/{cid}/alerts", tags=["reports"], responses=_errors(*CAMPAIGN_ERRORS))
    def alerts(cid: CampaignPath, oid: Owner) -> list[dict[str, Any]]:
        return svc.alerts(oid, cid)

    @app.get("/campaigns/{cid}/forecast", tags=["reports"], responses=_errors(*CAMPAIGN_ERRORS, 409, 503))
    def forecast(
        cid: CampaignPath, oid: Owner, runs: Annotated[int, Query(ge=1, le=MAX_FORECAST_RUNS)] = 5
    ) -> dict[str, Any]:
        """Before launch: cost to goal and the chance to reach it, from simulated campaigns.

        Expensive: a server runs ``heavy_workers`` of these at once (503 with ``Retry-After`` when busy)."""
        return svc.forecast(oid, cid, runs)

    @app.post(
        "/campaigns/{cid}/events",
        response_model=EventsResult,
        tags=["events"],
        responses=_errors(*CAMPAIGN_ERRORS, 409),
    )
    def events(cid: CampaignPath, body: EventsIn, oid: Owner) -> EventsResult:
        """A batch of response events; idempotent by event id; rejected item by item."""
        return svc.ingest_events(oid, cid, body.events)

    @app.get("/campaigns/{cid}/events", tags=["events"], responses=_errors(*CAMPAIGN_ERRORS))
    def list_events(
        cid: CampaignPath,
        oid: Owner,
        status: Literal["pending", "applied", "rejected"] | None = None,
        offset: Offset = 0,
        limit: Limit = 1000,
    ) -> list[dict[str, Any]]:
        """Stored events; those of runner decisions are ``pending`` until the next iteration
        applies them (or rejects them with the reason, e.g. a closed attribution window)."""
        return svc.list_events(oid, cid, status, offset, limit)

    @app.post(
        "/campaigns/{cid}/decide",
        response_model=DecideOut,
        tags=["events"],
        responses=_errors(*CAMPAIGN_ERRORS, 409),
    )
    def decide(cid: CampaignPath, body: DecideIn, oid: Owner) -> DecideOut:
        """A real-time decision for one customer, within every cap of the campaign; its worst case
        is reserved before it is returned."""
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
                for name, value in svc.counter_values().items():
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
