"""Annotated dependencies: database session, Temporal client, the caller and their role."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from temporalio.client import Client

from config import Settings, get_settings
from store.auth import lookup_token, same_secret
from store.db import get_engine
from workflows.kit.roles import may_not

bearer = HTTPBearer(auto_error=False)


def get_session() -> Iterator[Session]:
    with Session(get_engine(write=True), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_read_session() -> Iterator[Session]:
    with Session(get_engine(write=False), expire_on_commit=False) as session:
        yield session


async def current_settings() -> Settings:
    """The settings, as a dependency. Async on purpose: FastAPI runs a plain function dependency on its thread
    pool, a hop to another thread and back on every request for a cached object (under a burst of webhooks
    the hand-offs took 5-12 % of the API's CPU, bench/api_load.py --profile)."""
    return get_settings()


async def get_temporal(request: Request) -> Client:
    client = await request.app.state.temporal()
    if client is None:
        raise HTTPException(503, detail="Temporal is not reachable; try again shortly")
    return client


@dataclass(frozen=True)
class Caller:
    role: str
    person_id: str | None
    label: str

    @property
    def actor(self) -> str:
        return self.person_id or f"{self.role}:{self.label or 'token'}"


def get_caller(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
               settings: Annotated[Settings, Depends(current_settings)]) -> Caller:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(401, detail="a bearer token is required (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})
    token = creds.credentials
    if settings.admin_token and same_secret(token, settings.admin_token.get_secret_value()):
        return Caller(role="admin", person_id=None, label="admin-token")
    with Session(get_engine(write=False)) as s:
        row = lookup_token(s, token)
        if row is None:
            raise HTTPException(401, detail="the bearer token is unknown, revoked or expired",
                                headers={"WWW-Authenticate": "Bearer"})
        return Caller(role=row.role, person_id=row.person_id, label=row.label)


def require(*roles: str):
    """A dependency that lets in the given roles (admin always)."""

    async def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:  # no I/O: no thread (current_settings)
        if caller.role != "admin" and caller.role not in roles:
            raise HTTPException(403, detail=may_not(caller.role, "进行此操作", "do this", roles or ("admin",)))
        return caller

    return check


# Integers from the query or the path: larger than any id or count, but within SQLite's 64 bits
# (a bigger one overflowed in the driver: a 500 instead of a 422)
MAX_INT = 2**53
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")]
RowId = Annotated[int, Path(ge=0, le=MAX_INT)]


def limit_param(maximum: int) -> Any:
    return Query(ge=1, le=MAX_INT, description=f"how many rows; more than {maximum:,} are cut to {maximum:,}")


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
CallerDep = Annotated[Caller, Depends(get_caller)]
SettingsDep = Annotated[Settings, Depends(current_settings)]

ANY_ROLE = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander", "supervisor")
DUTY = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader")
Anyone = Annotated[Caller, Depends(require(*ANY_ROLE))]
DutyOfficer = Annotated[Caller, Depends(require(*DUTY))]
Supervisor = Annotated[Caller, Depends(require("supervisor", "duty_chief", "leading_leader"))]
Admin = Annotated[Caller, Depends(require())]

# the lists' date filters: local dates (settings.timezone), both days included (api.services.dates)
DateFrom = Annotated[str | None, Query(max_length=10, description="from this local date (YYYY-MM-DD), included")]
DateTo = Annotated[str | None, Query(max_length=10, description="to this local date (YYYY-MM-DD), included")]
