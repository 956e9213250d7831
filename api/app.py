"""The FastAPI application: routes per resource, JSON errors that say what is wrong."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.services.answers.intake import Intake, IntakeRefused
from api.services.errors import ServiceError
from config import connect_temporal, get_settings, tune_gc, tune_malloc
from store.db import migrate

log = structlog.get_logger("yingji.api")


class TemporalHolder:
    """Connects lazily and reconnects: the API answers (with 503s) while Temporal is down."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.lock = asyncio.Lock()

    async def __call__(self) -> Client | None:
        if self.client is None:
            async with self.lock:
                if self.client is None:
                    try:
                        self.client = await asyncio.wait_for(connect_temporal(), timeout=5)
                    except Exception as exc:  # reported by /healthz and as 503s
                        log.warning("temporal unreachable", error=str(exc))
        return self.client


def allowed_methods(app: FastAPI, scope: dict) -> list[str]:
    """Every method some route serves at this path."""
    from starlette.routing import Match

    found = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**scope, "method": method}
        if any(r.matches(probe)[0] == Match.FULL for r in app.router.routes):
            found.append(method)
    return found


def create_app(temporal_client: Client | None = None) -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tune_malloc(settings)
        migrate()
        tune_gc(settings)
        app.state.intake.start()  # answers stored but not processed (a process died, Temporal was down)
        scheduler = None
        if settings.run_scheduler:
            from api.feeds import start_scheduler

            scheduler = start_scheduler(settings, app.state.temporal)
        yield
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            scheduler.lock.release()
        await app.state.intake.stop()

    # FastAPI's built-in OpenTelemetry asked the environment whether a tracer, meter and logger provider were set,
    # on every request (2-4 % of the API's CPU under a burst of webhooks, bench/api_load.py --profile); yingji
    # configures none, its trail is the audit chain
    app = FastAPI(title="yingji 应急", version="0.1.0", lifespan=lifespan,
                  description="Emergency duty procedures as durable workflows / 应急值守流程引擎",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    holder = TemporalHolder()
    holder.client = temporal_client
    app.state.temporal = holder
    app.state.settings = settings
    app.state.intake = Intake(holder, settings)
    from api.answer_path import AnswerPath
    from api.security import SecurityMiddleware

    app.add_middleware(AnswerPath)  # inside SecurityMiddleware (the last added is the outermost)
    app.add_middleware(SecurityMiddleware, settings=settings)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return JSONResponse(status_code=422, content={"detail": f"{where}: {first['msg']}", "errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette names only the first route's methods; a path may have several
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request.scope))}
        if request.url.path.startswith("/console") and not request.url.path.startswith("/console/static"):
            from api.console.pages import render  # a console address answers with a page, in Chinese first

            words = {404: "页面不存在 / no such page", 405: "此页面不接受该操作 / this page does not take that request"}
            generic = exc.detail in ("Not Found", "Method Not Allowed")  # Starlette's own, not a route's reason
            page = render(request, "message.html", status=exc.status_code, kind="error",
                          message=words.get(exc.status_code, str(exc.detail)) if generic else str(exc.detail))
            for k, v in (headers or {}).items():
                page.headers[k] = v
            return page
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail}, headers=headers)

    @app.exception_handler(ServiceError)
    async def refused(_: Request, exc: ServiceError) -> JSONResponse:
        # a service's refusal (api/services/errors.py): its status and message, as an HTTPException answers
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})

    @app.exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError)
    async def update_timeout(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
            "detail": "the workflow did not answer in time (is the worker running?); try again shortly "
                      "/ 流程暂未响应,请稍后重试"})

    @app.exception_handler(RPCError)
    async def temporal_down(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED,
                              RPCStatusCode.RESOURCE_EXHAUSTED):
            raise exc  # anything else is a bug to see, not to hide
        log.warning("temporal call failed", status=exc.status.name, error=str(exc))
        return JSONResponse(status_code=503, headers={"Retry-After": "5"},
                            content={"detail": "Temporal is not reachable; try again shortly / 系统繁忙,请稍后重试"})

    @app.exception_handler(IntakeRefused)
    async def intake_refused(_: Request, exc: IntakeRefused) -> JSONResponse:
        return JSONResponse(status_code=503, headers={"Retry-After": str(exc.retry_after)}, content={
            "detail": f"the answer was not taken ({exc}); send it again shortly / 应答暂未接收,请稍后重发"})

    @app.exception_handler(OperationalError)
    async def database_busy(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable", error=str(exc.orig or exc)[:200])
        return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
            "detail": "the database is busy or unreachable; try again shortly / 数据库繁忙,请稍后重试"})

    from api.routes import include_all

    include_all(app)
    from api.console import install as install_console

    install_console(app)
    return app
