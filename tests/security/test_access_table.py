"""Who may call what: every route of the app × every role, from one table.

`ACCESS` classifies every route the app serves. A route missing from it fails
`test_every_route_is_classified` with its name, so a new route cannot be merged without
saying who may call it. For each classified route the tests call it as nobody, as each of
the seven roles, and (for the console) without the CSRF token, and check the answer:

- a role set (REST, bearer token): no token → 401; a role outside the set → 403; a role in
  it → anything but 401/403 (the route's own 404/409/422 are fine: the door opened);
- `console(...)`: the same for a console session cookie; nobody → redirect to the login page;
  every POST also needs the session's CSRF token (403 without it, even for admin);
- PUBLIC: open to anyone; LINK: the signed token in the URL is the credential (a bad one →
  403, no bearer token needed); TWILIO: only a valid `X-Twilio-Signature`, PLATFORM: only a platform's HMAC
  signature (hotline, broadcast) (a bearer token, even admin's, replaces neither); ALIYUN: only the push token in
  the URL (Aliyun does not sign its pushes); LOGIN: the login form's CSRF cookie.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from store.auth import ROLES
from tests.security.asgi import call

ALL = frozenset(ROLES)
DUTY = frozenset({"duty_staff", "duty_cadre", "duty_chief", "leading_leader", "admin"})
SUPERVISORS = frozenset({"supervisor", "duty_chief", "leading_leader", "admin"})
ADMIN = frozenset({"admin"})
ACTING = DUTY | {"commander"}  # who may act in a response (api/routes/activations.py Acting)
CHIEFS = frozenset({"duty_chief", "leading_leader", "admin"})  # schedules and drills (api/routes/duty/common.py Chief)
PUBLIC, LINK, TWILIO, LOGIN = "public", "signed link", "twilio signature", "console login"
PLATFORM = "platform signature"  # a platform's HMAC over timestamp and body (api/services/signed_webhooks.py)
ALIYUN = "aliyun push token"  # Aliyun's unsigned HTTP push: the token in its URL (api/routes/webhooks_aliyun.py)


@dataclass(frozen=True)
class Rule:
    access: str | frozenset  # PUBLIC | LINK | TWILIO | LOGIN | the roles that may call it
    console: bool = False  # a console page (session cookie + CSRF) rather than a bearer-token route
    json: dict | None = None  # a body to send (REST); allowed roles may get 422 for it, that is fine
    form: dict = field(default_factory=dict)  # form fields a console POST needs to reach its role check
    sample: str | None = None  # the path to request, for mounts


def console(roles: frozenset, **kw) -> Rule:
    return Rule(roles, console=True, **kw)


ACCESS: dict[tuple[str, str], Rule] = {
    # OpenAPI and health
    ("GET", "/openapi.json"): Rule(PUBLIC),
    ("GET", "/docs"): Rule(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Rule(PUBLIC),
    ("GET", "/redoc"): Rule(PUBLIC),
    ("GET", "/healthz"): Rule(PUBLIC),
    # warnings and call-outs
    ("POST", "/api/warnings"): Rule(DUTY, json={}),
    ("GET", "/api/warnings"): Rule(ALL),
    ("GET", "/api/warnings/{warning_id}"): Rule(ALL),
    ("GET", "/api/callouts"): Rule(ALL),
    ("GET", "/api/callouts/{callout_id}"): Rule(ALL),
    ("POST", "/api/callouts/{callout_id}/targets/{person_id}/ack"): Rule(DUTY, json={}),
    ("POST", "/api/callouts/{callout_id}/cancel"): Rule(DUTY, json={}),
    ("GET", "/api/publications"): Rule(ALL),
    ("GET", "/api/publications/{publication_id}"): Rule(ALL),
    ("POST", "/api/callouts/{callout_id}/relays/{person_id}"): Rule(DUTY, json={}),
    # incidents (the workflow's validators add who may draft/review/submit on top)
    ("POST", "/api/incidents"): Rule(DUTY, json={}),
    ("GET", "/api/incidents"): Rule(ALL),
    ("GET", "/api/incidents/{incident_id}"): Rule(ALL),
    ("POST", "/api/incidents/{incident_id}/verbal"): Rule(DUTY, json={}),
    ("POST", "/api/incidents/{incident_id}/vertical"): Rule(DUTY, json={}),
    ("POST", "/api/incidents/{incident_id}/draft"): Rule(DUTY, json={}),
    ("POST", "/api/incidents/{incident_id}/review"): Rule(DUTY, json={}),
    ("POST", "/api/incidents/{incident_id}/submit"): Rule(DUTY),
    ("POST", "/api/incidents/{incident_id}/followups"): Rule(DUTY, json={}),
    ("POST", "/api/incidents/{incident_id}/final"): Rule(DUTY, json={}),
    ("POST", "/api/incidents/{incident_id}/acks/{person_id}"): Rule(DUTY, json={}),
    # plan activations: the door lets in whoever may act in a response (supervisors only read); the plan and the
    # workflow's validators decide who may do each step (their 403 comes from the procedure, not from here)
    ("POST", "/api/activations"): Rule(ACTING, json={}),
    ("GET", "/api/activations"): Rule(ALL),
    # response proposals: the door lets in whoever may act in a response; the workflow lets the leading leader it
    # was sent to, or a role the plan lets activate at the level, decide (tests/workflows/test_proposal.py)
    ("GET", "/api/proposals/{proposal_id}"): Rule(ALL),
    ("POST", "/api/proposals/{proposal_id}/accept"): Rule(ACTING),
    ("POST", "/api/proposals/{proposal_id}/decline"): Rule(ACTING, json={}),
    ("GET", "/api/activations/{activation_id}"): Rule(ALL),
    ("POST", "/api/activations/{activation_id}/directives"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/items/{item_id}/ack"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/items/{item_id}/feedback"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/items/{item_id}/review"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/level"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/terminate"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/dispatches"): Rule(ACTING, json={}),
    ("GET", "/api/activations/{activation_id}/dispatches/proposal"): Rule(ALL),
    ("GET", "/api/activations/{activation_id}/supplies"): Rule(ALL),
    ("POST", "/api/activations/{activation_id}/supplies"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/supplies/{seq}/decision"): Rule(DUTY, json={}),
    ("POST", "/api/activations/{activation_id}/supplies/{seq}/pickup"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/supplies/{seq}/receipt"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/dispatches/{seq}/consult"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/dispatches/{seq}/decision"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/reinforcements"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/reinforcements/{seq}/answer"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/consultations"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/consultations/{seq}/conclusions"): Rule(ACTING, json={}),
    ("POST", "/api/activations/{activation_id}/acks/{person_id}"): Rule(DUTY, json={}),
    # post-event reviews: anyone may knock on a step; the review template's roles (summary, compile, signoff)
    # decide in the workflow
    ("POST", "/api/reviews"): Rule(DUTY, json={}),
    ("GET", "/api/reviews"): Rule(ALL),
    # hotline work orders: the workflow's rules say who may take each step on which order
    ("GET", "/api/scorecards"): Rule(DUTY | SUPERVISORS),
    ("GET", "/api/scorecards/{unit_id}"): Rule(DUTY | SUPERVISORS),
    # the monthly bulletin 通报: read like the scorecards; started by the chiefs; approve/return open to every role at
    # the door, the workflow's validator lets the leading leader only (403 with its words, recorded as a refusal)
    ("POST", "/api/bulletins"): Rule(frozenset({"duty_chief", "leading_leader", "admin"}), json={}),
    ("GET", "/api/bulletins"): Rule(DUTY | SUPERVISORS),
    ("GET", "/api/bulletins/{bulletin_id}"): Rule(DUTY | SUPERVISORS),
    ("POST", "/api/bulletins/{bulletin_id}/approve"): Rule(ALL),
    ("POST", "/api/bulletins/{bulletin_id}/return"): Rule(ALL, json={}),
    ("GET", "/api/bulletins/{bulletin_id}/pdf"): Rule(DUTY | SUPERVISORS),
    ("POST", "/api/workorders"): Rule(DUTY, json={}),
    ("GET", "/api/workorders"): Rule(ALL),
    ("GET", "/api/workorders/{workorder_id}"): Rule(ALL),
    ("POST", "/api/workorders/{workorder_id}/assign"): Rule(ALL, json={}),
    ("POST", "/api/workorders/{workorder_id}/sign"): Rule(ALL),
    ("POST", "/api/workorders/{workorder_id}/return"): Rule(ALL, json={}),
    ("POST", "/api/workorders/{workorder_id}/feedback"): Rule(ALL, json={}),
    ("POST", "/api/workorders/{workorder_id}/complete"): Rule(ALL, json={}),
    ("POST", "/api/workorders/{workorder_id}/close"): Rule(ALL, json={}),
    ("POST", "/api/workorders/{workorder_id}/satisfaction"): Rule(ALL, json={}),
    ("POST", "/api/workorders/{workorder_id}/incident"): Rule(DUTY, json={}),
    ("POST", "/api/webhooks/hotline"): Rule(PLATFORM),
    ("GET", "/api/reviews/{incident_id}"): Rule(ALL),
    ("POST", "/api/reviews/{incident_id}/summaries"): Rule(ALL, json={}),
    ("POST", "/api/reviews/{incident_id}/compile"): Rule(ALL),
    ("POST", "/api/reviews/{incident_id}/signoff"): Rule(ALL, json={}),
    ("GET", "/api/reviews/{incident_id}/report.{fmt}"): Rule(ALL),
    ("GET", "/api/reviews/{incident_id}/casefile"): Rule(SUPERVISORS),  # the audit trail inside: /api/audit's roles
    # outbox, simulator, acknowledgement links
    ("GET", "/api/outbox"): Rule(ALL),
    ("POST", "/api/simulator/messages/{message_id}"): Rule(DUTY, json={}),
    ("POST", "/api/simulator/spotcheck/{message_id}"): Rule(DUTY, json={}),
    ("GET", "/api/answers/ambiguous"): Rule(DUTY),
    ("POST", "/api/answers/{inbound_id}/assign"): Rule(DUTY, json={}),
    ("GET", "/a/{token}"): Rule(LINK),  # the short alias of a signed link, in texts
    ("GET", "/proposal/{token}"): Rule(LINK),
    ("POST", "/proposal/{token}"): Rule(LINK),
    ("GET", "/ack/{token}"): Rule(LINK),
    ("POST", "/ack/{token}"): Rule(LINK),
    ("GET", "/spotcheck/{token}"): Rule(LINK),
    ("POST", "/spotcheck/{token}"): Rule(LINK),
    ("GET", "/confirm/{token}"): Rule(LINK),
    ("POST", "/confirm/{token}"): Rule(LINK),
    # audit trail
    ("GET", "/api/audit"): Rule(SUPERVISORS),  # like one subject's events: the trail is theirs to read
    ("GET", "/api/audit/verify"): Rule(SUPERVISORS),
    ("GET", "/api/audit/refusals"): Rule(SUPERVISORS),  # refused steps, counted (store/refusals.py)
    ("GET", "/api/audit/{subject:path}/replay"): Rule(SUPERVISORS, sample="/api/audit/activation/x/replay"),
    ("GET", "/api/audit/{subject:path}"): Rule(SUPERVISORS, sample="/api/audit/review/x"),
    # directory and duty roster
    ("GET", "/api/directory/org-units"): Rule(ALL),
    ("GET", "/api/directory/positions"): Rule(ALL),
    ("GET", "/api/directory/persons"): Rule(ALL),
    ("GET", "/api/directory/persons/{person_id}"): Rule(ALL),
    ("GET", "/api/directory/posts"): Rule(ALL),
    ("GET", "/api/duty/now"): Rule(ALL),
    # the duty day: schedules, handovers, drills, 六问 spot checks, contact freshness
    ("GET", "/api/schedules"): Rule(ALL),
    ("POST", "/api/schedules/sync"): Rule(ADMIN),
    ("POST", "/api/schedules/{schedule_id}/{action}"): Rule(CHIEFS, sample="/api/schedules/x/pause", json={}),
    ("POST", "/api/handovers"): Rule(DUTY, json={"shift_at": "not a time"}),
    ("GET", "/api/handovers"): Rule(ALL),
    ("GET", "/api/handovers/{handover_id}"): Rule(ALL),
    # the handover workflow lets only the outgoing / incoming duty chief (or the leading leader) act
    ("POST", "/api/handovers/{handover_id}/note"): Rule(DUTY, json={}),
    ("POST", "/api/handovers/{handover_id}/hand-over"): Rule(DUTY, json={}),
    ("POST", "/api/handovers/{handover_id}/take-over"): Rule(DUTY, json={}),
    ("GET", "/api/drills"): Rule(ALL),
    ("GET", "/api/drills/{run_id}"): Rule(ALL),
    ("GET", "/api/drill-weeks"): Rule(ALL),
    ("POST", "/api/drill-programme/{drill_id}/run"): Rule(CHIEFS),
    ("GET", "/api/statistics/callouts"): Rule(ALL),
    ("POST", "/api/spotchecks"): Rule(DUTY, json={}),
    ("GET", "/api/spotchecks"): Rule(ALL),
    ("GET", "/api/spotchecks/{check_id}"): Rule(ALL),
    ("POST", "/api/spotchecks/{check_id}/answers"): Rule(DUTY, json={}),
    # the town's responsible person (any role) or a duty officer resolves; the workflow checks which
    ("POST", "/api/spotchecks/{check_id}/resolve"): Rule(ALL, json={}),
    ("POST", "/api/freshness/rounds"): Rule(ADMIN, json={"deadline": "not a time"}),
    ("GET", "/api/freshness/rounds"): Rule(ADMIN),
    ("GET", "/api/freshness/rounds/{round_id}"): Rule(ADMIN),
    ("GET", "/api/freshness/contacts"): Rule(ADMIN),
    ("GET", "/api/freshness/preview"): Rule(DUTY),
    # gateway webhooks
    ("POST", "/api/webhooks/twilio/sms"): Rule(TWILIO),
    ("POST", "/api/webhooks/twilio/sms/status"): Rule(TWILIO),
    ("POST", "/api/webhooks/twilio/voice/twiml"): Rule(TWILIO),
    ("POST", "/api/webhooks/twilio/voice/gather"): Rule(TWILIO),
    ("POST", "/api/webhooks/twilio/voice/status"): Rule(TWILIO),
    ("POST", "/api/webhooks/twilio/spotcheck/twiml"): Rule(TWILIO),
    ("POST", "/api/webhooks/twilio/spotcheck/gather"): Rule(TWILIO),
    ("POST", "/api/webhooks/broadcast"): Rule(PLATFORM),
    ("POST", "/api/webhooks/cityline"): Rule(PLATFORM),
    ("POST", "/api/webhooks/aliyun/sms/report"): Rule(ALIYUN),
    ("POST", "/api/webhooks/aliyun/sms/up"): Rule(ALIYUN),
    ("POST", "/api/webhooks/aliyun/voice/report"): Rule(ALIYUN),
    ("POST", "/api/webhooks/aliyun/voice/ivr"): Rule(ALIYUN),
    ("POST", "/api/webhooks/aliyun/voice/progress"): Rule(ALIYUN),
    # console
    ("GET", "/"): Rule(PUBLIC),  # a redirect to /console
    ("GET", "/console"): Rule(PUBLIC),
    ("GET", "/console/login"): Rule(PUBLIC),
    ("POST", "/console/login/token"): Rule(LOGIN),
    ("POST", "/console/login/code"): Rule(LOGIN),
    ("POST", "/console/login/verify"): Rule(LOGIN),
    ("POST", "/console/login/demo"): Rule(LOGIN),  # the demo's role logins (off unless set: 404)
    ("GET", "/console/login/demo-code"): Rule(PUBLIC),  # the demo's code for this browser's login form only
    ("GET", "/console/users"): console(ADMIN),
    ("GET", "/console/scorecards"): console(DUTY | SUPERVISORS),
    ("GET", "/console/scorecards/{unit_id}"): console(DUTY | SUPERVISORS),
    ("GET", "/console/bulletins"): console(DUTY | SUPERVISORS),
    ("POST", "/console/bulletins"): console(CHIEFS),
    ("GET", "/console/bulletins/{bulletin_id}"): console(DUTY | SUPERVISORS),
    ("GET", "/console/bulletins/{bulletin_id}/pdf"): console(DUTY | SUPERVISORS),
    ("POST", "/console/bulletins/{bulletin_id}/{action}"): console(ALL, sample="/console/bulletins/x/approve"),
    ("POST", "/console/users"): console(ADMIN, form={"role": "duty_staff", "label": "x"}),
    ("POST", "/console/users/{token_id}/role"): console(ADMIN, form={"role": "duty_staff"}, sample="/console/users/999/role"),
    ("POST", "/console/users/{token_id}/revoke"): console(ADMIN, sample="/console/users/999/revoke"),
    ("POST", "/console/logout"): console(ALL),
    ("GET", "/console/phone"): console(ALL),  # the person's own messages (simulator); nobody else's
    ("GET", "/console/desk"): console(ALL),
    ("GET", "/console/desk/stream"): console(ALL),  # the live desk's alarms: what the desk shows everyone
    ("GET", "/console/callouts/new"): console(DUTY),
    ("POST", "/console/callouts/preview"): console(DUTY, form={"event": "暴雨", "level": "blue"}),
    ("POST", "/console/callouts/start"): console(DUTY, form={"event": "暴雨", "level": "blue"}),
    ("GET", "/console/callouts/{callout_id}"): console(ALL),
    ("GET", "/console/publications/{publication_id}"): console(ALL),
    ("GET", "/console/callouts/{callout_id}/stream"): console(ALL),
    ("GET", "/console/callouts/{callout_id}/targets/{target_id}"): console(ALL),
    ("POST", "/console/callouts/{callout_id}/targets/{target_id}/ack"): console(DUTY, form={"note": "电话确认"}),
    ("POST", "/console/callouts/{callout_id}/targets/{target_id}/recall"): console(
        DUTY, form={"nonce": "n0nce-0001", "channel": "sms"}),
    ("POST", "/console/callouts/{callout_id}/ack-many"): console(DUTY, form={"note": "电话确认", "target": "1"}),
    ("POST", "/console/simulator/{message_id}"): console(DUTY, form={"outcome": "reply", "callout_id": "x",
                                                                     "target_id": "1"}),
    ("POST", "/console/callouts/{callout_id}/cancel"): console(DUTY, form={"reason": "测试"}),
    ("POST", "/console/callouts/{callout_id}/relays/{person_id}"): console(DUTY, form={"households": "1"}),
    ("GET", "/console/replay"): console(SUPERVISORS),
    ("GET", "/console/replay/{subject:path}"): console(SUPERVISORS, sample="/console/replay/activation/x"),
    ("GET", "/console/replay/{subject:path}/state"): console(SUPERVISORS, sample="/console/replay/review/x/state"),
    # incidents, activations, reviews: the page's own check (user.may) is the door, as in the REST API; the
    # workflow's validators decide each step on top. `{action}` routes name a real step, or they answer 404 first.
    ("GET", "/console/incidents"): console(ALL),
    ("POST", "/console/incidents"): console(DUTY),
    ("GET", "/console/incidents/{incident_id}"): console(ALL),
    ("POST", "/console/incidents/{incident_id}/{action}"): console(DUTY, sample="/console/incidents/x/submit"),
    ("POST", "/console/incidents/{incident_id}/receipts/{person_id}"): console(DUTY, form={"note": "电话确认"}),
    ("GET", "/console/activations"): console(ALL),
    ("POST", "/console/activations"): console(ACTING),
    ("GET", "/console/activations/{activation_id}"): console(ALL),
    ("POST", "/console/activations/{activation_id}/{action}"): console(ACTING, sample="/console/activations/x/terminate",
                                                                       form={"reason": "测试"}),
    ("GET", "/console/workorders"): console(ALL),
    ("POST", "/console/workorders"): console(DUTY),
    ("GET", "/console/workorders/{workorder_id}"): console(ALL),
    ("POST", "/console/workorders/{workorder_id}/{action}"): console(ALL, sample="/console/workorders/x/sign"),
    ("GET", "/console/proposals/{proposal_id}"): console(ALL),
    ("POST", "/console/proposals/{proposal_id}/{action}"): console(ACTING, sample="/console/proposals/x/accept"),
    ("GET", "/console/reviews"): console(ALL),
    ("POST", "/console/reviews"): console(DUTY),
    ("GET", "/console/reviews/{incident_id}"): console(ALL),
    ("GET", "/console/reviews/{incident_id}/report.{fmt}"): console(ALL),
    ("GET", "/console/reviews/{incident_id}/casefile"): console(SUPERVISORS),
    ("POST", "/console/reviews/{incident_id}/{action}"): console(ALL, sample="/console/reviews/x/compile"),
    # the duty day: handovers (the workflow lets only the outgoing / incoming chief act), drills and schedules
    ("GET", "/console/handovers"): console(ALL),
    ("POST", "/console/handovers"): console(DUTY),
    ("GET", "/console/handovers/{handover_id}"): console(ALL),
    ("POST", "/console/handovers/{handover_id}/note"): console(DUTY, form={"text": "交班记录"}),
    ("POST", "/console/handovers/{handover_id}/hand-over"): console(DUTY),
    ("POST", "/console/handovers/{handover_id}/take-over"): console(DUTY),
    ("GET", "/console/drills"): console(ALL),
    ("GET", "/console/drills/{run_id}"): console(ALL),
    ("POST", "/console/schedules/{schedule_id}/{action}"): console(CHIEFS, sample="/console/schedules/x/pause"),
    ("GET", "/console/roster"): console(ALL),
    ("GET", "/console/roster.pdf"): console(ALL),
    ("GET", "/console/spotchecks"): console(ALL),
    ("GET", "/console/spotchecks/{check_id}"): console(ALL),
    ("POST", "/console/spotchecks/{check_id}/resolve"): console(ALL, form={"key": "k", "note": "已整改"}),
    ("GET", "/console/contacts"): console(ADMIN),
    ("GET", "/console/contacts/rounds/{round_id}"): console(ADMIN),
    ("GET", "/console/incidents/{incident_id}/reports/{seq}/document.{fmt}"): console(
        ALL, sample="/console/incidents/x/reports/0/document.pdf"),
    ("GET", "/console/directory"): console(ALL),
    ("GET", "/console/resources"): console(ALL),
    ("GET", "/console/resources/alerts"): console(ALL),
    ("GET", "/console/resources/stale"): console(ALL),
    ("GET", "/console/resources/readiness"): console(ALL),
    # the lists: the message log (names, numbers, failures) for the duty office and supervisors; search; exports
    ("GET", "/console/messages"): console(DUTY | {"supervisor"}),
    ("GET", "/console/search"): console(ALL),
    ("GET", "/console/export/incidents.xlsx"): console(ALL),
    ("GET", "/console/export/callouts/{callout_id}.xlsx"): console(ALL),
    ("GET", "/console/export/messages.xlsx"): console(DUTY | {"supervisor"}),
    ("GET", "/console/export/directory.xlsx"): console(ALL),
    ("GET", "/console/definitions"): console(ALL),
    # static files (htmx vendored, the console's CSS and JS)
    ("GET", "/static"): Rule(PUBLIC, sample="/static/vendor/htmx.min.js"),
    ("GET", "/console/static"): Rule(PUBLIC, sample="/console/static/console.css"),
}

# the resource register 应急资源 (api/routes/resources.py): every role reads, as the directory; the duty office edits
RESOURCE_SECTIONS = ("teams", "equipment", "depots", "experts", "shelters")
ACCESS[("GET", "/api/resources/alerts")] = Rule(ALL)
ACCESS[("GET", "/api/resources/stale")] = Rule(ALL)
# the monthly readiness check 每月调度 (api/routes/readiness.py): every role reads; the chiefs start one by hand
ACCESS[("GET", "/api/readiness")] = Rule(ALL)
ACCESS[("GET", "/api/readiness/{run_id}")] = Rule(ALL)
ACCESS[("POST", "/api/readiness")] = Rule(CHIEFS)
for _s in RESOURCE_SECTIONS:
    ACCESS[("GET", f"/api/resources/{_s}")] = Rule(ALL)
    ACCESS[("GET", f"/api/resources/{_s}/{{record_id}}")] = Rule(ALL)
    ACCESS[("POST", f"/api/resources/{_s}")] = Rule(DUTY, json={})
    ACCESS[("PUT", f"/api/resources/{_s}/{{record_id}}")] = Rule(DUTY, json={})

NUMERIC = {"message_id", "target_id", "seq"}


# ------------------------------------------------------------------ ownership: whose person, unit, incident, review
#
# A role being let in is not enough: a route that takes the id of a person, a unit, an incident (an activation is an
# incident's response) or a review must also check that the caller may act on *that* one (DESIGN.md, Security).
# Every such route is classified here (`test_every_id_route_says_whose_it_is` finds them by their path and body
# fields, so a new one fails until it is):
#
# - OWNED: only the id's owner may act, or a role the procedure lets act on its behalf, recorded as such; the test of
#   the same name in tests/security/test_ownership.py shows an allowed role refused (403 naming what it does not own)
#   and, where the procedure allows it, the on-behalf step recorded with its actor;
# - ON_BEHALF: any role of the route acts for any person by design (the duty office confirms by phone); the step is
#   recorded as on behalf (channel `proxy`, the actor kept) — the reason says where;
# - OPEN: any role of the route, any id, with the reason (reading, or the duty office's work as a whole).

ID_PATH = {"person_id", "incident_id", "activation_id", "item_id", "workorder_id"}
ID_BODY = {"person_id", "unit_id", "incident_id", "assignee", "units", "town_id", "reporting_unit_id"}


@dataclass(frozen=True)
class Own:
    kind: str  # OWNED | ON_BEHALF | OPEN
    why: str


OWNED, ON_BEHALF, OPEN = "owned", "on behalf", "open"


def owned(why: str) -> Own:
    return Own(OWNED, why)


def on_behalf(why: str) -> Own:
    return Own(ON_BEHALF, why)


def open_to_role(why: str) -> Own:
    return Own(OPEN, why)


READ = open_to_role("reading: every role follows the duty office's cases; nothing changes")
DUTY_OFFICE = open_to_role("the duty office as a whole runs every incident's reporting chain (1+1+X+X: whoever is on "
                           "duty drafts, the leading leader reviews); the workflow's validators decide by role and order "
                           "and record the actor")
OWNERSHIP: dict[tuple[str, str], Own] = {
    # call-outs and incidents: the duty office confirms by phone for any person called
    ("POST", "/api/callouts/{callout_id}/targets/{person_id}/ack"): on_behalf(
        "DESIGN.md: duty staff confirm by phone on someone's behalf; callout.ack channel proxy, actor and note kept"),
    ("POST", "/api/callouts/{callout_id}/relays/{person_id}"): on_behalf(
        "到户: the duty office records a village's relay as the person or their grid worker phoned it in; only for a "
        "relay asked of that person (404), a grid worker of that village (422); relay.confirmed keeps by, for, "
        "reported_by"),
    ("POST", "/console/callouts/{callout_id}/relays/{person_id}"): on_behalf(
        "the board's 代录到户: the same rule as POST /api/callouts/{callout_id}/relays/{person_id}"),
    ("POST", "/api/answers/{inbound_id}/assign"): on_behalf(
        "DESIGN.md: an ambiguous reply (a shared number) is held for the duty office to assign; only to a person "
        "that number was sent a message for (422 otherwise), recorded as answer.assigned with the duty officer"),
    ("POST", "/api/incidents"): open_to_role("intake: the duty office receives reports about any town or unit"),
    ("GET", "/api/incidents/{incident_id}"): READ,
    ("GET", "/api/scorecards/{unit_id}"): open_to_role(
        "考核: supervisors and the duty office judge every town and department; reading only, nothing changes"),
    ("GET", "/console/scorecards/{unit_id}"): open_to_role(
        "考核: the same reading as GET /api/scorecards/{unit_id}"),
    ("GET", "/api/bulletins/{bulletin_id}"): open_to_role(
        "通报: the district's bulletin of a month, read by supervisors and the duty office; nothing changes"),
    ("GET", "/api/bulletins/{bulletin_id}/pdf"): open_to_role("通报: the same reading as GET /api/bulletins/{bulletin_id}"),
    ("POST", "/api/bulletins/{bulletin_id}/approve"): open_to_role(
        "通报: one bulletin a month for the whole district; the workflow's validator lets the leading leader only "
        "decide it, while it awaits a decision, and records the actor"),
    ("POST", "/api/bulletins/{bulletin_id}/return"): open_to_role(
        "通报: as POST /api/bulletins/{bulletin_id}/approve; a return needs a reason (422)"),
    ("GET", "/console/bulletins/{bulletin_id}"): open_to_role("通报: the same reading as GET /api/bulletins/{bulletin_id}"),
    ("GET", "/console/bulletins/{bulletin_id}/pdf"): open_to_role("通报: the same reading as GET /api/bulletins/{id}/pdf"),
    ("POST", "/console/bulletins/{bulletin_id}/{action}"): open_to_role(
        "通报: the same workflow updates as POST /api/bulletins/{bulletin_id}/approve and /return"),
    ("POST", "/api/incidents/{incident_id}/verbal"): DUTY_OFFICE,
    ("POST", "/api/incidents/{incident_id}/vertical"): DUTY_OFFICE,
    ("POST", "/api/incidents/{incident_id}/draft"): DUTY_OFFICE,
    ("POST", "/api/incidents/{incident_id}/review"): DUTY_OFFICE,
    ("POST", "/api/incidents/{incident_id}/submit"): DUTY_OFFICE,
    ("POST", "/api/incidents/{incident_id}/followups"): DUTY_OFFICE,
    ("POST", "/api/incidents/{incident_id}/final"): DUTY_OFFICE,
    ("POST", "/api/incidents/{incident_id}/acks/{person_id}"): on_behalf(
        "a recipient's receipt confirmed by phone: report.receipt.ack channel proxy, actor and note kept"),
    # plan activations: the plan and the workflow's Rules say whose each step is
    ("POST", "/api/activations"): owned("a commander activates only a level they command (the plan's commander or "
                                        "deputies); the duty office by the plan's activate roles"),
    ("GET", "/api/activations/{activation_id}"): READ,
    ("POST", "/api/activations/{activation_id}/directives"): owned("the commanders of this activation's level"),
    ("POST", "/api/activations/{activation_id}/items/{item_id}/ack"): owned(
        "the item's assignee (or their deputy), or the plan's proxy roles on their behalf (channel proxy, note)"),
    ("POST", "/api/activations/{activation_id}/items/{item_id}/feedback"): owned(
        "the item's assignee, or the plan's proxy roles on their behalf (on_behalf in the event)"),
    ("POST", "/api/activations/{activation_id}/items/{item_id}/review"): owned("the commanders of this activation"),
    ("POST", "/api/activations/{activation_id}/level"): owned("the commanders of the level in force and of the new one"),
    ("POST", "/api/activations/{activation_id}/terminate"): owned("the commanders of this activation"),
    ("GET", "/api/activations/{activation_id}/dispatches/proposal"): READ,
    ("GET", "/api/activations/{activation_id}/supplies"): READ,
    ("POST", "/api/activations/{activation_id}/supplies"): open_to_role(
        "物资调拨: whoever acts in the response asks for supplies for it from any depot; the duty office decides"),
    ("POST", "/api/activations/{activation_id}/supplies/{seq}/decision"): open_to_role(
        "the duty office approves or refuses for the district, any response's request; never the one who asked (403)"),
    ("POST", "/api/activations/{activation_id}/supplies/{seq}/pickup"): open_to_role(
        "the duty office or the response records the pickup at the depot, naming who collected it (by_name)"),
    ("POST", "/api/activations/{activation_id}/supplies/{seq}/receipt"): open_to_role(
        "the duty office or the response records what arrived, with quantities; the actor is kept in the event"),
    ("POST", "/api/activations/{activation_id}/dispatches"): owned(
        "fire rescue (the plan's drafter), or the plan's proxy roles on its behalf"),
    ("POST", "/api/activations/{activation_id}/dispatches/{seq}/consult"): owned(
        "the sector department, or emergency management recording its word (note)"),
    ("POST", "/api/activations/{activation_id}/dispatches/{seq}/decision"): owned("emergency management (the approver)"),
    ("POST", "/api/activations/{activation_id}/reinforcements"): owned("the commanders of this activation"),
    ("POST", "/api/activations/{activation_id}/consultations"): owned(
        "the duty office, the leading leader, or a commander of this activation's level (workflows/activation/rules.py)"),
    ("POST", "/api/activations/{activation_id}/consultations/{seq}/conclusions"): owned(
        "the duty office, the leading leader, or a commander of this activation's level (workflows/activation/rules.py)"),
    ("POST", "/api/activations/{activation_id}/reinforcements/{seq}/answer"): open_to_role(
        "the duty office records the city's answer (the plan's record_answer roles); the city holds no token here"),
    ("POST", "/api/activations/{activation_id}/acks/{person_id}"): owned(
        "the person themself, or the plan's proxy roles on their behalf: the same rule as an item's acknowledgement"),
    # post-event reviews
    ("POST", "/api/reviews"): open_to_role("the duty office starts the review of any incident, naming its units"),
    ("POST", "/api/workorders"): open_to_role("intake: the duty office takes a hotline ticket about any town"),
    ("POST", "/api/workorders/{workorder_id}/assign"): open_to_role(
        "分拨: the duty office (the rules' assign roles) assigns any order to any department or town"),
    ("GET", "/api/workorders/{workorder_id}"): READ,
    ("POST", "/api/workorders/{workorder_id}/sign"): owned(
        "签收: only a person of THE assigned unit (or whom its escalation reached: deputy, superior, duty chief)"),
    ("POST", "/api/workorders/{workorder_id}/return"): owned("退回: only a person of THE assigned unit"),
    ("POST", "/api/workorders/{workorder_id}/feedback"): owned(
        "办理反馈: a person of THE assigned unit, or the duty office on its behalf (代录, recorded as such)"),
    ("POST", "/api/workorders/{workorder_id}/complete"): owned(
        "办结: a person of THE assigned unit, or the duty office on its behalf (代录, recorded as such)"),
    ("POST", "/api/workorders/{workorder_id}/close"): open_to_role(
        "the duty office checks and closes or sends back any order (the rules' close roles); no unit owns it"),
    ("POST", "/api/workorders/{workorder_id}/satisfaction"): open_to_role(
        "回访: the hotline platform's answer (or the duty office typing it in) for any order"),
    ("POST", "/api/workorders/{workorder_id}/incident"): open_to_role(
        "the duty office turns any order into an incident"),
    ("POST", "/console/workorders"): open_to_role("intake, as POST /api/workorders"),
    ("GET", "/console/workorders/{workorder_id}"): READ,
    ("POST", "/console/workorders/{workorder_id}/{action}"): owned(
        "the same workflow updates as POST /api/workorders/{workorder_id}/…: only the assigned unit's persons (or the "
        "duty office on its behalf) sign, return, feed back, complete; the duty office assigns and closes"),
    ("GET", "/api/reviews/{incident_id}"): READ,
    ("POST", "/api/reviews/{incident_id}/summaries"): owned(
        "a unit's summary comes from the unit (its head or deputy) or the duty office enters it on its behalf (代录)"),
    ("POST", "/api/reviews/{incident_id}/compile"): open_to_role(
        "the duty office compiles the district's report (the template's compile roles); no unit owns it"),
    ("POST", "/api/reviews/{incident_id}/signoff"): open_to_role(
        "the leading leader signs for the district (the template's signoff role); no unit owns it"),
    ("GET", "/api/reviews/{incident_id}/report.{fmt}"): READ,
    ("GET", "/api/reviews/{incident_id}/casefile"): READ,
    # the directory; the duty day
    ("GET", "/api/directory/persons/{person_id}"): READ,
    ("POST", "/api/spotchecks/{check_id}/answers"): on_behalf(
        "a duty officer records the six answers a sampled person gave by phone (README, 六问): the duty officer is "
        "the actor of the recorded answers"),
    # console pages: the same services and workflow updates as the REST routes above, so the same owners
    ("GET", "/console/incidents/{incident_id}"): READ,
    ("POST", "/console/incidents"): open_to_role("intake, as POST /api/incidents"),
    ("POST", "/console/incidents/{incident_id}/{action}"): DUTY_OFFICE,
    ("POST", "/console/incidents/{incident_id}/receipts/{person_id}"): on_behalf(
        "as POST /api/incidents/{incident_id}/acks/{person_id}"),
    ("GET", "/console/activations/{activation_id}"): READ,
    ("POST", "/console/activations/{activation_id}/{action}"): owned(
        "the same workflow updates (Rules) as the REST activation steps, tested there"),
    ("GET", "/console/reviews/{incident_id}"): READ,
    ("GET", "/console/reviews/{incident_id}/report.{fmt}"): READ,
    ("GET", "/console/incidents/{incident_id}/reports/{seq}/document.{fmt}"): READ,
    ("GET", "/console/reviews/{incident_id}/casefile"): READ,
    ("POST", "/console/reviews/{incident_id}/{action}"): owned(
        "the same workflow updates as POST /api/reviews/{incident_id}/summaries, compile, signoff, tested there"),
}

REGISTER = open_to_role("the duty office keeps the whole district's resource register (seed 003 篇四: 录入平台并定期更新维护): "
                        "any town's or unit's record; the towns, persons, teams and depots it names must exist (422)")
for _s in RESOURCE_SECTIONS:
    OWNERSHIP[("POST", f"/api/resources/{_s}")] = REGISTER
    OWNERSHIP[("PUT", f"/api/resources/{_s}/{{record_id}}")] = REGISTER


def id_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route whose path or body names a person, unit, incident, activation or item."""
    from fastapi.routing import APIRoute

    try:
        from fastapi.routing import _iter_included_route_candidates as flatten
    except ImportError:  # pragma: no cover
        flatten = list
    out = set()
    for route in flatten(app.routes):
        if not isinstance(route, APIRoute):
            continue
        names = set(re.findall(r"\{(\w+)", route.path))
        for param in route.dependant.body_params:
            model = getattr(param.field_info, "annotation", None) or param.type_
            fields = getattr(model, "model_fields", None)
            names |= set(fields) if fields else {param.name}
        if names & ID_PATH or names & ID_BODY:
            out |= {(m, route.path) for m in route.methods if m != "HEAD"}
    return out


def app_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, mounts as ("GET", prefix); HEAD is GET's."""
    from starlette.routing import Mount

    try:  # FastAPI ≥ 0.120 keeps included routers as branches
        from fastapi.routing import _iter_included_route_candidates as flatten
    except ImportError:  # pragma: no cover - older FastAPI: app.routes is flat
        flatten = list
    out = []
    for route in flatten(app.routes):
        if isinstance(route, Mount):
            out.append(("GET", route.path))
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                out.append((method, route.path))
    return out


def concrete(path: str, rule: Rule) -> str:
    if rule.sample:
        return rule.sample
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: "1" if m.group(1) in NUMERIC else "x", path)


def test_every_route_is_classified(tmp_path, monkeypatch):
    """New routes (plan activation, post-event review, the duty day, …) must be added to ACCESS."""
    monkeypatch.setenv("YINGJI_DATA_DIR", str(tmp_path))
    from api.app import create_app
    from config import get_settings

    get_settings.cache_clear()
    served = app_routes(create_app())
    missing = [f"{m} {p}" for m, p in served if (m, p) not in ACCESS]
    assert not missing, ("routes not classified in tests/security/test_access_table.py ACCESS (say who may call "
                         "them: a role set, console(roles), PUBLIC, LINK, TWILIO or LOGIN): " + ", ".join(missing))
    stale = [f"{m} {p}" for m, p in ACCESS if (m, p) not in served]
    assert not stale, "ACCESS lists routes the app no longer serves: " + ", ".join(stale)
    assert len(served) == len(set(served))


def test_every_id_route_says_whose_it_is(tmp_path, monkeypatch):
    """A route taking a person, unit, incident or review id must say who may act on which one (OWNERSHIP)."""
    monkeypatch.setenv("YINGJI_DATA_DIR", str(tmp_path))
    from api.app import create_app
    from config import get_settings

    get_settings.cache_clear()
    found = id_routes(create_app())
    missing = sorted(f"{m} {p}" for m, p in found if (m, p) not in OWNERSHIP)
    assert not missing, ("routes taking a person/unit/incident/review id without an ownership rule in "
                         "tests/security/test_access_table.py OWNERSHIP (owned, on_behalf or open_to_role with the "
                         "reason): " + ", ".join(missing))
    assert not [c for c in OWNERSHIP if c not in ACCESS], "OWNERSHIP names routes ACCESS does not list"
    for case, own in OWNERSHIP.items():
        assert own.kind in (OWNED, ON_BEHALF, OPEN) and own.why.strip(), case
    assert ("POST", "/api/reviews/{incident_id}/summaries") in found  # its unit comes in the body


@pytest.fixture(scope="module")
async def secured(module_time_env, tmp_path_factory):
    """One app, database and worker for the whole table, in file order: the cases only call routes and read status
    codes, and a FastAPI app builds its routes' dependencies at its first requests (most of a case's time when each
    case had an app of its own). What one case creates, a later one may find: a route must stay < 500 either way."""
    from contextlib import contextmanager

    from tests.helpers import migrated
    from tests.security.conftest import secured_app

    tmp = tmp_path_factory.mktemp("access")
    with pytest.MonkeyPatch.context() as mp, contextmanager(migrated)(f"sqlite:///{tmp}/yingji.db", tmp, mp):
        async with secured_app(module_time_env.client, mp) as env:
            yield env


@pytest.fixture(autouse=True)
def _case_apart(request):
    """Each case with console sessions of its own (POST /console/logout ends the one it is called with), and the
    settings read again after it (a case that sets a secret has it undone by monkeypatch)."""
    from config import get_settings
    from tests.security.conftest import console_sessions

    if "secured" in request.fixturenames:
        env = request.getfixturevalue("secured")
        env.sessions = console_sessions(env.settings, env.tokens)
    yield
    get_settings.cache_clear()


def _bearer_cases():
    return [(m, p) for (m, p), r in ACCESS.items() if isinstance(r.access, frozenset) and not r.console]


def _console_cases():
    return [(m, p) for (m, p), r in ACCESS.items() if r.console]


def _ids(case):
    return f"{case[0]} {case[1]}"


async def _as_role(env, method: str, path: str, rule: Rule, role: str | None, csrf: bool = True):
    if not rule.console:
        headers = {"Authorization": f"Bearer {env.tokens[role]}"} if role else {}
        return await call(env.app, method, path, headers=headers, json=rule.json)
    headers = {}
    if role:
        headers["cookie"] = env.sessions[role]["cookie"]
        if csrf and method == "POST":
            headers["x-csrf-token"] = env.sessions[role]["csrf"]
    return await call(env.app, method, path, headers=headers, form=rule.form if method == "POST" else None)


@pytest.mark.parametrize("case", _bearer_cases(), ids=_ids)
async def test_rest_routes_by_role(secured, case):
    method, template = case
    rule = ACCESS[case]
    path = concrete(template, rule)
    nobody = await _as_role(secured, method, path, rule, None)
    assert nobody.status == 401, f"{method} {path} without a token: {nobody.status} {nobody.text[:200]}"
    wrong = await call(secured.app, method, path, headers={"Authorization": "Bearer yj_forged"}, json=rule.json)
    assert wrong.status == 401, f"{method} {path} with an unknown token: {wrong.status}"
    for role in ROLES:
        got = await _as_role(secured, method, path, rule, role)
        if role in rule.access:
            assert got.status not in (401, 403), f"{method} {path} as {role}: {got.status} {got.text[:300]}"
            assert got.status < 500, f"{method} {path} as {role}: {got.status} {got.text[:300]}"
        else:
            assert got.status == 403, f"{method} {path} as {role} should be refused: {got.status} {got.text[:200]}"
            assert role in got.json()["detail"]


@pytest.mark.parametrize("case", _console_cases(), ids=_ids)
async def test_console_pages_by_role(secured, case):
    method, template = case
    rule = ACCESS[case]
    path = concrete(template, rule)
    nobody = await _as_role(secured, method, path, rule, None)
    assert nobody.status == 303 and nobody.headers["location"].startswith("/console/login?next="), \
        f"{method} {path} without a session: {nobody.status}"
    for role in ROLES:
        got = await _as_role(secured, method, path, rule, role)
        if role in rule.access:
            assert got.status not in (401, 403), f"{method} {path} as {role}: {got.status} {got.text[:300]}"
            assert got.status < 500 and "/console/login?next=" not in got.headers.get("location", ""), \
                f"{method} {path} as {role}: {got.status}"
        else:
            assert got.status == 403, f"{method} {path} as {role} should be refused: {got.status}"
        if method == "POST":  # no CSRF token: refused whoever it is
            forged = await _as_role(secured, method, path, rule, role, csrf=False)
            assert forged.status == 403 and "CSRF" in forged.text, f"{method} {path} as {role} without CSRF"


@pytest.mark.parametrize("case", [c for c, r in ACCESS.items() if r.access == PUBLIC], ids=_ids)
async def test_public_routes_need_nothing(secured, case):
    method, template = case
    got = await call(secured.app, method, concrete(template, ACCESS[case]))
    assert got.status in (200, 303, 503), f"{method} {template}: {got.status}"  # /healthz: 503 names what is down


@pytest.mark.parametrize("case", [c for c, r in ACCESS.items() if r.access == LINK], ids=_ids)
async def test_link_routes_take_only_a_signed_link(secured, case):
    method, template = case
    for headers in ({}, {"Authorization": f"Bearer {secured.tokens['admin']}"}):
        got = await call(secured.app, method, template.replace("{token}", "not-a-signed-link"), headers=headers)
        assert got.status == 403, f"{method} {template}: {got.status}"


@pytest.mark.parametrize("case", [c for c, r in ACCESS.items() if r.access == TWILIO], ids=_ids)
async def test_webhooks_take_only_a_gateway_signature(secured, case):
    method, path = case
    form = {"MessageSid": "SMx", "CallSid": "CAx", "From": "+8613900000001", "Body": "1", "MessageStatus": "delivered"}
    for headers in ({}, {"Authorization": f"Bearer {secured.tokens['admin']}"}, {"X-Twilio-Signature": "forged="}):
        got = await call(secured.app, method, path, headers=headers, form=form)
        assert got.status == 403, f"{method} {path} with {list(headers)}: {got.status}"


@pytest.mark.parametrize("case", [c for c, r in ACCESS.items() if r.access == PLATFORM], ids=_ids)
async def test_platform_webhooks_take_only_their_signature(secured, case, monkeypatch):
    """The hotline's and the broadcast platform's webhooks, their secrets configured: a bearer token, no signature
    or a forged one is 403."""
    import time

    from config import get_settings

    monkeypatch.setenv("YINGJI_HOTLINE_SECRET", "hotline-secret")
    monkeypatch.setenv("YINGJI_BROADCAST_SECRET", "broadcast-secret")
    monkeypatch.setenv("YINGJI_CITYLINE_SECRET", "cityline-secret")
    get_settings.cache_clear()
    method, path = case
    now = str(int(time.time()))
    for headers in ({}, {"Authorization": f"Bearer {secured.tokens['admin']}"},
                    {"X-Hotline-Timestamp": now, "X-Hotline-Signature": "forged"},
                    {"X-Broadcast-Timestamp": now, "X-Broadcast-Signature": "forged"},
                    {"X-Cityline-Timestamp": now, "X-Cityline-Signature": "forged"}):
        got = await call(secured.app, method, path, headers=headers, json={"type": "ticket"})
        assert got.status == 403, f"{method} {path} with {list(headers)}: {got.status}"


@pytest.mark.parametrize("case", [c for c, r in ACCESS.items() if r.access == ALIYUN], ids=_ids)
async def test_aliyun_pushes_take_only_their_token(secured, case, monkeypatch):
    """Aliyun's pushes, the token configured: none, a bearer token (even admin's), a wrong token or a token in a
    header instead of the URL is 403; with no token configured at all, the right-looking one is refused too."""
    from config import get_settings

    monkeypatch.setenv("YINGJI_ALIYUN_CALLBACK_TOKEN", "push-token")
    get_settings.cache_clear()
    method, path = case
    items = [{"out_id": "1", "biz_id": "1^1", "call_id": "1^1", "success": True, "dtmf": "1", "phone_number": "13900000001",
              "content": "1", "status_code": "200000"}]
    for query, headers in (("", {}), ("", {"Authorization": f"Bearer {secured.tokens['admin']}"}),
                           ("?token=guess", {}), ("", {"token": "push-token"}), ("?token=", {})):
        got = await call(secured.app, method, path + query, headers=headers, json=items)
        assert got.status == 403, f"{method} {path}{query} with {list(headers)}: {got.status}"
    monkeypatch.delenv("YINGJI_ALIYUN_CALLBACK_TOKEN")
    get_settings.cache_clear()
    got = await call(secured.app, method, path + "?token=push-token", json=items)
    assert got.status == 403, f"{method} {path} with no token configured: {got.status}"


@pytest.mark.parametrize("case", [c for c, r in ACCESS.items() if r.access == LOGIN], ids=_ids)
async def test_login_forms_need_their_csrf_cookie(secured, case):
    method, path = case
    got = await call(secured.app, method, path, form={"token": secured.tokens["admin"], "csrf": "guess"})
    assert got.status == 403 and "CSRF" in got.text
    assert "set-cookie" not in got.headers
