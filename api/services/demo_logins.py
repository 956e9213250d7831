"""The demo's logins: on the login page, one button per role of the demo district's duty roster (and its
commander and supervisor), each bound to the demo person who holds it now. Offered only when the setting
`demo_logins` is on (`yingji run` sets it), the gateway is the simulator and the database holds the demo
district 青溪区: never with a production gateway or an imported directory.

A demo login is a console session on an API token of that role and person, labelled as the demo's (made
once, reused after: the token's secret is never shown, the session names the token's row)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from config import Settings
from store.auth import ApiToken, create_token
from store.directory import OrgUnit, Person, Post
from store.roster import on_duty_in_role
from workflows.kit.roles import ROSTER_ROLES

DEMO_ROOT = ("330110", "青溪区")  # store/demo/district.yaml's first unit
# the roles the roster does not hold, and the demo post that holds each: the 应急管理局 head commands a
# Ⅳ级 response (definitions/plans), the duty office head supervises
POSTS = {"commander": ("dept_head", "D01"), "supervisor": ("duty_office_head", "D13")}
LABEL = "演示 demo"


@dataclass(frozen=True)
class DemoRole:
    role: str
    person_id: str
    name: str


def offered(settings: Settings) -> bool:
    return settings.demo_logins and settings.sms_gateway == "simulator"


def _is_demo(s: Session) -> bool:
    root = s.get(OrgUnit, DEMO_ROOT[0])
    return root is not None and root.name == DEMO_ROOT[1]


def demo_roles(s: Session, settings: Settings, now: datetime) -> list[DemoRole]:
    """The roles one may log in as, with their demo person now; empty when the demo is not offered."""
    if not offered(settings) or not _is_demo(s):
        return []
    out: list[DemoRole] = []
    for role in ROSTER_ROLES[::-1]:  # the duty staff first: the one who registers reports
        shift = next(iter(on_duty_in_role(s, now, role)), None)
        person = s.get(Person, shift.person_id) if shift else None
        if person is not None:
            out.append(DemoRole(role, person.id, person.name))
    for role, (position, unit) in POSTS.items():
        post = s.exec(select(Post).where(Post.position_code == position, Post.org_unit_id == unit)).first()
        person = s.get(Person, post.person_id) if post else None
        if person is not None:
            out.append(DemoRole(role, person.id, person.name))
    return out


def demo_session(s: Session, settings: Settings, role: str, now: datetime) -> dict[str, Any] | None:
    """The session data of a demo login as `role`; None if it is not offered (or no demo person holds it)."""
    who = next((d for d in demo_roles(s, settings, now) if d.role == role), None)
    if who is None:
        return None
    label = f"{LABEL} · {role}"
    row = s.exec(select(ApiToken).where(ApiToken.label == label, ApiToken.person_id == who.person_id,
                                        ApiToken.role == role, ApiToken.revoked == False)).first()  # noqa: E712
    if row is None:
        create_token(s, role, who.person_id, label)
        s.flush()
        row = s.exec(select(ApiToken).where(ApiToken.label == label, ApiToken.person_id == who.person_id,
                                            ApiToken.role == role, ApiToken.revoked == False)).first()  # noqa: E712
    return {"m": "token", "t": row.id} if row is not None else None


# the simulator's login codes, for the demo's login page: kept in this process only, per browser (the login
# form's cookie hash), a few minutes; only when the demo is offered (the SMS of a real gateway never lands here)
_CODES: dict[str, tuple[str, str, datetime]] = {}


def remember_code(settings: Settings, client: str, name: str, code: str, at: datetime) -> None:
    if not offered(settings):
        return
    for key in [k for k, (_, _, t) in _CODES.items() if (at - t).total_seconds() > 600]:
        _CODES.pop(key, None)
    _CODES[client] = (name, code, at)


def code_for(settings: Settings, client: str) -> tuple[str, str] | None:
    """(the person's name, the code) last sent to this browser in the demo; None otherwise."""
    if not offered(settings) or client not in _CODES:
        return None
    name, code, _ = _CODES[client]
    return name, code
