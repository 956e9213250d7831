"""Who may act on the console's pages: the role tuples (as the REST API lets them) and the dependencies that
refuse the others before a page runs (`Refused`, which the console renders as the forbidden page: pages.py)."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.console import auth
from api.deps import DUTY
from workflows.kit.roles import may_not

# who may act on the console's pages (as the REST API lets them)
SUPERVISORS = ("supervisor", "duty_chief", "leading_leader")  # replay and case files: who may read /api/audit
ACTING = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander")  # plan activations
CHIEFS = ("duty_chief", "leading_leader")  # the drill schedules
LOG_READERS = (*DUTY, "supervisor")  # the message log and its export: names, numbers, failures
# who sees whole phone numbers (tel: links): the duty office, who calls people and confirms for them by phone
# (代为确认), and the commander, who directs them; the supervisor reads records and sees them masked
SEES_NUMBERS = (*DUTY, "commander")


class Refused(Exception):  # noqa: N818 - a page's answer, not an error of the code
    """A console page that refuses: the message page with this status (the console's handler renders it;
    no message: the forbidden page). Raised by the role dependencies below, before the page runs."""

    def __init__(self, status: int = 403, message: str | None = None) -> None:
        super().__init__(message or "forbidden")
        self.status, self.message = status, message


class Role:
    """A console page for some roles only (admin always): a POST checks its CSRF token first, so that a
    forged form is refused as such whoever sends it; then a role not listed gets the forbidden page."""

    def __init__(self, *roles: str) -> None:
        self.roles = roles

    async def __call__(self, request: Request, user: auth.Viewer) -> auth.ConsoleUser:
        if request.method not in ("GET", "HEAD"):
            await auth.check_csrf(request, user.csrf)
        if not user.may(*self.roles):
            raise Refused(403, may_not(user.role, "进行此操作", "do this", self.roles))
        return user


def acting_on(actions: tuple[str, ...], roles: tuple[str, ...], unknown: str):
    """For a POST `.../{action}`: the CSRF token, then 404 for an action not in `actions` (`unknown` names
    it), then the roles, in this order."""

    async def check(action: str, user: auth.Poster) -> auth.ConsoleUser:
        if action not in actions:
            raise Refused(404, f"{unknown} {action!r}")
        if not user.may(*roles):
            raise Refused(403, may_not(user.role, "进行此操作", "do this", roles))
        return user

    return check


DutyUser = Annotated[auth.ConsoleUser, Depends(Role(*DUTY))]  # the duty office: as the REST API's DutyOfficer
Supervisor = Annotated[auth.ConsoleUser, Depends(Role(*SUPERVISORS))]
ActingUser = Annotated[auth.ConsoleUser, Depends(Role(*ACTING))]
LogReader = Annotated[auth.ConsoleUser, Depends(Role(*LOG_READERS))]
