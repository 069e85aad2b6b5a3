"""The campaign owners' HTTP API (FastAPI): one router per resource in :mod:`serving.routes`
(campaigns, events, decide, policies, ops), with thin handlers over :class:`serving.service.Service`
(database, money) and :mod:`agent` (the campaign).

Run it with ``campaign-opt serve`` or ``python -m serving`` (both call :func:`serve`); the OpenAPI
docs are at ``/docs``.
"""

import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.status import HTTP_401_UNAUTHORIZED

from serving.routes import audiences, campaigns, catalogs, decide, events, ops, policies, reports
from serving.routes.deps import UnauthorizedError
from serving.service import Runner, Service, ServiceError
from serving.settings import Settings, settings_from_env

logger = logging.getLogger(__name__)


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
    app.state.service, app.state.runner, app.state.settings = svc, runner, settings
    app.state.limiter = _RateLimiter(settings.rate_per_second, settings.rate_burst)
    app.state.metrics = metrics = _Metrics(svc)

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
        logger.info(
            "request refused method=%s path=%s status=%s error=%s",
            request.method,
            request.url.path,
            err.status,
            type(err).__name__,
        )
        if err.status == 422:
            field = err.field or ["body"]
            loc = field if field[0] in ("body", "query", "path") else ["body", *field]
            return JSONResponse({"detail": [{"loc": loc, "msg": err.message, "type": "value_error"}]}, 422)
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
        return JSONResponse({"detail": err.message}, err.status, headers=headers)

    @app.exception_handler(UnauthorizedError)
    async def _unauthorized(request: Request, err: UnauthorizedError) -> JSONResponse:
        return JSONResponse(
            {"detail": "missing or unknown API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"},
            HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.middleware("http")
    async def _timing(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            logger.exception("request failed method=%s path=%s", request.method, request.url.path)
            raise
        route = request.scope.get("route")
        metrics.observe(
            request.method,
            getattr(route, "path", "unmatched"),
            response.status_code,
            time.perf_counter() - start,
        )
        return response

    for router in (ops.router, policies.router, campaigns.router, events.router, decide.router):
        app.include_router(router)
    app.include_router(audiences.router)
    app.include_router(catalogs.router)
    app.include_router(reports.router)
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


def serve(host: str, port: int, worker: bool = True, echo: Callable[[str], None] | None = None) -> None:
    """Serve the API (with the live runner when ``worker``) on ``host:port`` until interrupted.

    The one way a server starts: ``campaign-opt serve`` and ``python -m serving`` (which
    :class:`serving.process.ServerProcess` runs) both call it. The settings come from the
    environment (:func:`serving.settings.settings_from_env`), ``run_worker`` from ``worker``.

    Args:
        host: the address to bind.
        port: the port.
        worker: run the live runner in this process.
        echo: where the one "serving on ..." line goes (default: stderr).

    Raises:
        ValueError: ``host:port`` cannot be listened on (a bad host or a busy port), with a
            one-line message naming ``--host/--port``; raised before the app starts.
    """
    import dataclasses
    import socket
    import sys

    import uvicorn

    try:  # a bad host or a busy port, as one line before the app starts
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except (OSError, UnicodeError) as err:
        raise ValueError(f"--host/--port {host}:{port}: cannot listen there ({err})") from None
    settings = dataclasses.replace(settings_from_env(), run_worker=worker)
    line = f"serving on http://{host}:{port} (docs at /docs), database {settings.database_url}"
    (echo or (lambda text: print(text, file=sys.stderr, flush=True)))(line)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
