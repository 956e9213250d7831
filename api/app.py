"""The FastAPI application: routes per resource, JSON errors that say what is wrong."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from config import connect_temporal, get_settings
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


def create_app(temporal_client: Client | None = None) -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        migrate()
        scheduler = None
        if settings.run_scheduler:
            from api.feeds import start_scheduler

            scheduler = start_scheduler(settings, app.state.temporal)
        yield
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            scheduler.lock.release()

    app = FastAPI(title="yingji 应急", version="0.1.0", lifespan=lifespan,
                  description="Emergency duty procedures as durable workflows / 应急值守流程引擎")
    holder = TemporalHolder()
    holder.client = temporal_client
    app.state.temporal = holder
    app.state.settings = settings
    from api.security import SecurityMiddleware

    app.add_middleware(SecurityMiddleware, settings=settings)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return JSONResponse(status_code=422, content={"detail": f"{where}: {first['msg']}", "errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail}, headers=getattr(exc, "headers", None))

    from api.routes import include_all

    include_all(app)
    from api.console import install as install_console

    install_console(app)
    return app
