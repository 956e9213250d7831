"""Inputs that used to give a 500: each is now a 4xx that says what is wrong (found by schemathesis)."""
from __future__ import annotations

import json

import pytest

from tests.security.asgi import call
from tests.security.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HUGE = "11079476396958146363392"  # past SQLite's 64-bit integers: the driver overflowed


@pytest.mark.parametrize("method, path, json", [
    ("GET", f"/api/outbox?offset={HUGE}", None),
    ("GET", f"/api/outbox?limit={HUGE}", None),
    ("GET", f"/api/audit?after_seq={HUGE}", None),
    ("GET", f"/api/warnings?offset={HUGE}", None),
    ("GET", f"/api/directory/persons?offset={HUGE}", None),
    ("GET", f"/api/callouts/x?offset={HUGE}", None),
    ("POST", f"/api/simulator/messages/{HUGE}", {"outcome": "delivered"}),
    ("GET", f"/api/audit/review/x?after_seq={HUGE}", None),
    ("GET", f"/api/audit/review/x?limit={HUGE}", None),
    ("GET", f"/api/reviews/x/report.json?version={HUGE}", None),
    ("POST", f"/api/simulator/spotcheck/{HUGE}", {"keys": "12"}),
])
async def test_huge_numbers_are_422(secured, method, path, json):
    got = await call(secured.app, method, path, headers=ADMIN, json=json)
    assert got.status == 422 and "less than or equal" in got.json()["detail"], got.text


@pytest.mark.parametrize("path", [f"/console/callouts/x/targets/{HUGE}", f"/console/callouts/x?offset={HUGE}",
                                  f"/console/replay/x/state?t={HUGE}"])
async def test_huge_numbers_in_the_console_are_422(secured, path):
    got = await call(secured.app, "GET", path, headers={"cookie": secured.sessions["supervisor"]["cookie"]})
    assert got.status == 422, got.text


async def test_casualty_figures_beyond_any_incident_are_422(secured):
    body = {"source": "110", "category": "accident", "place": "x", "summary": "x", "reporting_unit": "x", "reporter": "x",
            "casualties": {"injured": int(HUGE)}}
    got = await call(secured.app, "POST", "/api/incidents", headers=ADMIN, json=body)
    assert got.status == 422 and "casualties.injured" in got.json()["detail"]


async def test_405_names_every_method_the_path_has(secured):
    got = await call(secured.app, "PUT", "/ack/whatever")
    assert got.status == 405 and got.headers["allow"] == "GET, POST"


async def test_the_documented_422_is_the_one_given(secured):
    spec = (await call(secured.app, "GET", "/openapi.json")).json()
    op = spec["paths"]["/api/callouts/{callout_id}/cancel"]["post"]
    ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorOut")
    got = await call(secured.app, "POST", "/api/callouts/x/cancel", headers=ADMIN, json={})
    assert got.status == 422 and isinstance(got.json()["detail"], str) and got.json()["errors"][0]["loc"]


async def test_a_temporal_server_without_schedules_is_a_409_that_says_so(secured):
    """The time-skipping server has no schedules: listing, syncing and the console's drill page say so (no 500)."""
    for method, path in (("GET", "/api/schedules"), ("POST", "/api/schedules/sync")):
        got = await call(secured.app, method, path, headers=ADMIN)
        assert got.status == 409 and "does not support schedules" in got.json()["detail"], got.text
    page = await call(secured.app, "GET", "/console/drills", headers={"cookie": secured.sessions["duty_chief"]["cookie"]})
    assert page.status == 200 and "does not support schedules" in page.text


async def test_a_second_confirmation_round_in_the_same_minute_is_a_409(secured):
    """Rounds are named by the minute they start in. A minute may turn between two calls, so call
    until one is refused; each refusal must name the round this test started just before it."""
    started = []
    try:
        for _ in range(3):  # two minute turns in three calls cannot happen: one call takes well under a minute
            got = await call(secured.app, "POST", "/api/freshness/rounds", headers=ADMIN, json={})
            if got.status == 409:
                assert started and started[-1] in got.json()["detail"], got.text
                break
            assert got.status == 202, got.text
            started.append(got.json()["round_id"])
        else:
            pytest.fail(f"three rounds started and none refused: {started}")
    finally:
        for rid in started:
            await secured.client.get_workflow_handle(rid).terminate("test over")


INCIDENT = {"source": "110", "category": "natural_disaster", "place": "x", "summary": "x", "reporting_unit": "x",
            "reporter": "x"}


def _recorded() -> tuple[int, int, int]:
    from sqlmodel import func, select

    from store.audit import AuditEvent
    from store.db import session_scope
    from store.incidents import Incident
    from store.warnings import Warning

    with session_scope(write=False) as s:
        return tuple(s.exec(select(func.count()).select_from(t)).one() for t in (AuditEvent, Warning, Incident))


@pytest.mark.parametrize("path, body, where, shown", [
    ("/api/warnings", '{"identifier": "nan-1", "level": "orange", "event": "暴雨", "water_level": NaN}',
     "water_level", "NaN"),
    ("/api/incidents", json.dumps({**INCIDENT, "rainfall_mm": [12.5, float("inf")]}), "rainfall_mm.1", "Infinity"),
    ("/api/incidents", json.dumps({**INCIDENT, "place": "x"})[:-1] + ', "water_level": -1e400}', "water_level",
     "-Infinity"),
    ("/api/activations/x/directives", '{"text": "x", "assignee": "x", "due_in": Infinity}', "due_in", "Infinity"),
])
async def test_nan_and_infinity_in_a_json_body_are_422_naming_the_field_and_nothing_is_recorded(secured, path, body,
                                                                                              where, shown):
    """JSON has no NaN or Infinity, but json.loads reads them (and 1e400 as Infinity), pydantic's float fields take
    them and free-form or unknown keys pass them on: a warning with one was stored and called out, an incident opened,
    a time limit of Infinity was a 500. Now every JSON body is refused with 422 naming the field (api/security.py),
    and nothing is recorded."""
    before = _recorded()
    got = await call(secured.app, "POST", path, headers={**ADMIN, "content-type": "application/json"},
                     content=body.encode())
    assert got.status == 422, got.text
    assert got.json()["detail"].startswith(f"{where}: Input should be a finite number ({shown}"), got.text
    assert _recorded() == before


async def test_a_number_with_an_exponent_is_taken_as_before(secured):
    body = '{"identifier": "exp-1", "level": "orange", "event": "1e5 暴雨", "water_level": 1.5e2}'
    got = await call(secured.app, "POST", "/api/warnings", headers={**ADMIN, "content-type": "application/json"},
                     content=body.encode())
    assert got.status == 201, got.text


@pytest.mark.parametrize("due_in", ["1e300", '"99999999999999d"'])
async def test_a_time_limit_too_long_for_a_timedelta_is_422(secured, due_in):
    got = await call(secured.app, "POST", "/api/activations/x/directives", headers={**ADMIN, "content-type": "application/json"},
                     content=f'{{"text": "x", "assignee": "x", "due_in": {due_in}}}'.encode())
    assert got.status == 422 and got.json()["detail"].startswith("due_in: Value error, duration"), got.text
    assert "longer than a year" in got.json()["detail"]
