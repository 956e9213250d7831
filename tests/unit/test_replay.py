"""Replay: a call-out's state at chosen instants, from its audit events alone."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from definitions.loader import load_or_raise
from store.audit import AuditEvent, NewEvent, append
from store.db import session_scope
from store.replay import EventCache, Row, jsonable, load_events, replay_callout
from tests import activation_trail as act
from tests.workflows.callout_helpers import worker  # noqa: F401 - the call-out tests' worker fixture

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"
T0 = datetime(2026, 7, 1, 3, 10, tzinfo=UTC)
WID = "callout-x"


def _events() -> list[Row]:
    """Three targets: A answers the text at +2 min; B answers the voice call at +12 min after the
    text's 10-minute wait ran out; C's text fails at once, the voice call is not answered, the
    deputy is escalated to at +20 min and never answers: unreachable at +25 min. A CAP Update
    raises the level to red at +15 min."""
    seq = iter(range(1, 1000))
    out: list[Row] = []

    def ev(kind: str, minutes: float, step: str, channel: str | None = None, actor: str = "system",
           workflow: str = f"{WID}/shard-0", **payload) -> None:
        out.append(Row(next(seq), kind, T0 + timedelta(minutes=minutes), actor, channel, step, workflow, payload))

    def sent(target: str, minutes: float, step: str, person: str, channel: str, status: str = "sent",
             purpose: str = "notify") -> None:
        ev("callout.sent", minutes, f"send/{target}/{step}/{person}/{channel}", channel, target=target,
           person_id=person, purpose=purpose, status=status)

    ev("callout.started", 0, "started", workflow=WID, level="orange", towns=["330110001"])
    ev("callout.plan_chosen", 0, "plan", workflow=WID, plan="heavy_rain", version="v1", category="heavy_rain",
       tiers=["departments", "towns", "villages"])
    ev("callout.targets_resolved", 0.1, "resolve/0", workflow=WID, tiers=["departments", "towns", "villages"],
       per_tier={"departments": 1, "towns": 1, "villages": 2}, total=4)
    a, b, c = "departments/1", "towns/2", "villages/3"
    sent(a, 0.2, "0.0", "pA", "sms")
    sent(a, 0.2, "0.0", "pA", "im")
    sent(b, 0.2, "0.0", "pB", "sms")
    sent(c, 0.2, "0.0", "pC", "sms")
    ev("callout.delivery", 0.3, "delivery/c", target=c, person_id="pC", state="notified",
       send=f"{WID}/shard-0/{c}/0.0/pC/sms", status="undelivered")
    ev("callout.ack", 2, f"{a}/ack", "sms", "pA", target=a, person_id="pA", state="acknowledged", note=None)
    sent(c, 0.3, "2.0", "pC", "voice")  # the failed text ended C's wait at once
    ev("callout.timeout", 10.2, f"{b}/timeout", target=b, person_id="pB", state="notified")
    sent(b, 10.2, "2.0", "pB", "voice")
    ev("callout.ack", 12, f"{b}/ack", "voice", "pB", target=b, person_id="pB", state="acknowledged", note=None)
    ev("callout.updated", 15, "update/u1", workflow=WID, from_level="orange", to_level="red")
    ev("callout.timeout", 20, f"{c}/timeout", target=c, person_id="pC", state="notified")
    ev("callout.escalated", 20, f"{c}/escalated", target=c, person_id="dC", state="escalated", to="deputy")
    sent(c, 20, "4.0", "dC", "voice", purpose="escalate")
    ev("callout.timeout", 25, f"{c}/timeout2", target=c, person_id="pC", state="escalated")
    ev("callout.unreachable", 25, f"{c}/unreachable", target=c, person_id="pC", state="unreachable")
    ev("callout.ended", 26, "ended", workflow=WID, status="completed")
    return out


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _by_key(state: dict) -> dict[str, dict]:
    return {t["key"]: t for t in state["targets"]}


def test_before_anything_and_at_start():
    events = _events()
    early = replay_callout(events, T0 - timedelta(seconds=1))
    assert early["status"] == "not started" and early["targets"] == [] and early["events_applied"] == 0
    start = replay_callout(events, _at(0.15))
    assert start["status"] == "running" and start["level"] == "orange"
    assert start["counts"]["pending"] == 4 and start["total"] == 4  # resolved, nobody texted yet
    assert start["plan"] == {"id": "heavy_rain", "version": "v1", "category": "heavy_rain"}


def test_states_at_several_instants():
    events = _events()
    s = replay_callout(events, _at(1))
    t = _by_key(s)
    assert {k: v["state"] for k, v in t.items()} == {"departments/1": "notified", "towns/2": "notified",
                                                     "villages/3": "notified"}
    assert s["counts"]["pending"] == 1  # the fourth resolved target: no event of its own yet
    assert s["per_tier"]["villages"]["pending"] == 1 and s["per_tier"]["villages"]["notified"] == 1
    assert len(t["departments/1"]["attempts"]) == 2 and t["departments/1"]["person_id"] == "pA"
    assert [a["status"] for a in t["villages/3"]["attempts"]] == ["undelivered", "sent"]

    s = replay_callout(events, _at(5))
    t = _by_key(s)
    assert t["departments/1"]["state"] == "acknowledged" and t["departments/1"]["ack_channel"] == "sms"
    assert t["departments/1"]["acknowledged_at"] == _at(2)
    assert s["counts"]["acknowledged"] == 1 and s["level"] == "orange"

    s = replay_callout(events, _at(16))
    t = _by_key(s)
    assert s["counts"]["acknowledged"] == 2 and s["level"] == "red"
    assert len(t["towns/2"]["attempts"]) == 2 and t["towns/2"]["ack_channel"] == "voice"

    s = replay_callout(events, _at(21))
    t = _by_key(s)
    assert t["villages/3"]["state"] == "escalated" and t["villages/3"]["escalated_to"] == ["dC"]
    assert t["villages/3"]["person_id"] == "pC"

    s = replay_callout(events, _at(30))
    t = _by_key(s)
    assert t["villages/3"]["state"] == "unreachable" and s["status"] == "completed"
    assert s["counts"] == {"pending": 1, "notified": 0, "acknowledged": 2, "escalated": 0, "unreachable": 1,
                           "canceled": 0}
    assert s["open"] == 1  # the one never texted
    assert s["last_event"]["kind"] == "callout.ended"


def test_open_deadlines_from_the_plan():
    plan = load_or_raise(DEFINITIONS).of("callout")["heavy_rain"].model
    events = _events()
    s = replay_callout(events, _at(5), plan)
    assert s["deadlines_known"]
    due = {d["target"]: d["due"] for d in s["deadlines"]}
    # towns: standard policy, 10 minutes after the text; villages: grassroots, 10 minutes after the voice call
    assert due == {"towns/2": _at(0.2) + timedelta(minutes=10), "villages/3": _at(0.3) + timedelta(minutes=10)}
    s = replay_callout(events, _at(21), plan)
    assert {d["target"]: d["due"] for d in s["deadlines"]} == {"villages/3": _at(20) + timedelta(minutes=10)}
    assert replay_callout(events, _at(5))["deadlines"] == []  # without the plan: not derivable


def test_needs_a_time_zone_and_serialises():
    with pytest.raises(ValueError):
        replay_callout(_events(), datetime(2026, 7, 1))
    out = jsonable(replay_callout(_events(), _at(30)))
    assert out["targets"][0]["attempts"][0]["at"].startswith("2026-07-01T03:10:12")


def test_load_events_from_the_store_up_to_an_instant(db_url):
    with session_scope() as s:
        append(s, [NewEvent(subject="c1", kind="callout.started", step_id="started", at=_at(0), payload={"level": "red"}),
                   NewEvent(subject="c1", kind="callout.updated", step_id="u", at=_at(5), payload={"to_level": "orange"}),
                   NewEvent(subject="c2", kind="callout.started", step_id="started", at=_at(0))])
    with session_scope(write=False) as s:
        rows = load_events(s, "c1")
        assert [r.kind for r in rows] == ["callout.started", "callout.updated"] and rows[0].payload == {"level": "red"}
        assert rows[0].at == _at(0)
        assert len(load_events(s, "c1", until=_at(1))) == 1
        assert replay_callout(rows, _at(1))["level"] == "red" and replay_callout(rows, _at(9))["level"] == "orange"


def test_the_event_cache_follows_the_chain(db_url):
    cache = EventCache(max_subjects=1)

    def add(step: str, minutes: float, **payload) -> None:
        with session_scope() as s:
            append(s, [NewEvent(subject="c1", kind="callout.updated", step_id=step, at=_at(minutes), payload=payload)])

    add("a", 0, to_level="orange")
    with session_scope(write=False) as s:
        assert [e.payload for e in cache.events(s, "c1")] == [{"to_level": "orange"}]
        assert cache.events(s, "nobody") == []
    add("b", 1, to_level="red")  # appended since: read from the end of the cached list
    with session_scope(write=False) as s:
        rows = cache.events(s, "c1")
        assert [e.payload["to_level"] for e in rows] == ["orange", "red"] and rows == load_events(s, "c1")
        assert cache.events(s, "c1") is rows  # unchanged chain: the same list


# ------------------------------------------------------------ a real call-out on the time-skipping server


async def test_replay_of_a_real_callout(env, worker, db_url):
    from tests.factories import small_district
    from tests.workflows.callout_helpers import ack, callout_input, outbox, start, targets, wait_for

    with session_scope() as s:
        people = small_district(s, missing_deputy=("330110001.deputy",))
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    cid = inp.callout_id
    await wait_for(lambda: targets(cid) and all(t.attempts for t in targets(cid).values()), what="every first text")
    before_acks = datetime.now(UTC)
    first, second = people["330110001001.resp"], people["D01.head"]
    await ack(env.client, cid, first, "sms")
    await wait_for(lambda: targets(cid)[first].state == "acknowledged", what="first ack")
    await ack(env.client, cid, second, "link")
    await wait_for(lambda: targets(cid)[second].state == "acknowledged", what="second ack")
    await handle.result()  # the rest run through the whole policy (time skips)
    assert outbox(cid)

    def events() -> list:
        with session_scope(write=False) as s:
            return load_events(s, cid)

    evs = events()
    # the last event: on the shared time-skipping server, workflow time may run far ahead of the wall clock
    end = replay_callout(evs, max(e.at for e in evs) + timedelta(seconds=1))
    read_model = targets(cid)
    # at the end the replay agrees with the read model the activities kept, target by target
    assert end["status"] == "completed" and end["total"] == len(read_model)
    by_person = {t["person_id"]: t for t in end["targets"]}
    for pid, row in read_model.items():
        got = by_person[pid]
        assert got["key"] == row.target_key and got["tier"] == row.tier
        assert got["state"] == row.state, pid
        assert got["escalated_to"] == row.escalated_to, pid
        assert got["acknowledged_at"] == row.acknowledged_at and got["ack_channel"] == row.ack_channel
        assert [(a["channel"], a["status"], a["person_id"]) for a in got["attempts"]] == \
               [(a["channel"], a["status"], a["person_id"]) for a in row.attempts], pid
    assert end["counts"]["acknowledged"] == 2

    # before anyone answered: everyone texted, nobody acknowledged, nobody escalated
    before = replay_callout(evs, before_acks)
    assert before["counts"]["acknowledged"] == 0 and before["counts"]["escalated"] == 0
    assert before["counts"]["notified"] == len(read_model)
    # at the first answer: exactly one
    first_ack = next(e for e in evs if e.kind == "callout.ack")
    assert replay_callout(evs, first_ack.at)["counts"]["acknowledged"] == 1
    assert _by_person(replay_callout(evs, first_ack.at))[first]["ack_channel"] == "sms"
    # just before and at the first escalation
    first_esc = next(e for e in evs if e.kind == "callout.escalated")
    assert replay_callout(evs, first_esc.at - timedelta(microseconds=1))["counts"]["escalated"] == 0
    # (on the time-skipping server the interpreter's records carry the skipped workflow time while the
    # activities stamp sends and the end with the wall clock, so the status is not compared here)
    assert replay_callout(evs, first_esc.at)["counts"]["escalated"] >= 1
    # the stored plan has the version the call-out ran with: deadlines are known while it runs
    loaded = load_or_raise(DEFINITIONS).of("callout")["heavy_rain"]
    mid = replay_callout(evs, before_acks, loaded.model)
    assert mid["deadlines_known"] and len(mid["deadlines"]) == len(read_model)
    assert all(d["due"] > before_acks for d in mid["deadlines"])
    with session_scope(write=False) as s:
        assert len(s.exec(select(AuditEvent).where(AuditEvent.subject == cid)).all()) == len(evs)
        # the route's function finds the plan by its version and joins the names from the directory
        from api.services.replay import replay_subject

        routed = replay_subject(s, cid, before_acks, DEFINITIONS)
        assert routed["deadlines_known"] and len(routed["deadlines"]) == len(read_model)
        assert {t["name"] for t in routed["targets"]} >= {"社区1-1防汛责任人", "区应急管理局局长"}


def _by_person(state: dict) -> dict[str, dict]:
    return {t["person_id"]: t for t in state["targets"]}


async def test_replay_route_roles_and_filters(db_url):
    import httpx

    from api.app import create_app
    from store.auth import create_token

    with session_scope() as s:
        append(s, [NewEvent(subject=WID, kind=e.kind, step_id=e.step_id, workflow_id=e.workflow_id, at=e.at,
                            channel=e.channel, actor=e.actor, payload=e.payload) for e in _events()])
        sup, staff = create_token(s, "supervisor"), create_token(s, "duty_staff")
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        url = f"/api/audit/{WID}/replay"
        assert (await api.get(url, params={"at": _at(5).isoformat()},
                              headers={"Authorization": f"Bearer {staff}"})).status_code == 403
        ok = await api.get(url, params={"at": _at(5).isoformat()}, headers={"Authorization": f"Bearer {sup}"})
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["counts"]["acknowledged"] == 1 and body["subject"] == WID and body["level"] == "orange"
        assert not body["deadlines_known"]  # the events say version v1; the stored plan has another
        only = await api.get(url, params={"at": _at(30).isoformat(), "state": "unreachable"},
                             headers={"Authorization": f"Bearer {sup}"})
        assert [t["key"] for t in only.json()["targets"]] == ["villages/3"]
        naive = await api.get(url, params={"at": "2026-07-01T03:20:00"}, headers={"Authorization": f"Bearer {sup}"})
        assert naive.status_code == 422
        early = await api.get(url, params={"at": (T0 - timedelta(hours=1)).isoformat()},
                              headers={"Authorization": f"Bearer {sup}"})
        assert early.status_code == 404


# ------------------------------------------------------------------ the other procedures


def test_activation_level_in_force_tasks_directives_and_calls_at_instants():
    from store.replay import replay_activation

    rows = act.trail()
    s = replay_activation(rows, act.at(15))
    assert s["status"] == "active" and s["level"] == "IV" and s["plan_id"] == "flood_control"
    assert s["commander"] == "应急管理局局长" and s["commander_post"] == "dept_head@D01"
    assert {t["id"]: (t["status"], t["state"]) for t in s["tasks"]} == {
        "T-patrol": ("acknowledged", "open"), "T-stock": ("open", "open")}
    [d1] = s["directives"]
    assert (d1["status"], d1["state"], d1["returns"], d1["acknowledged_at"]) == ("returned", "open", 1, act.at(6))
    assert [(d["key"], d["due"]) for d in s["time_limits"]] == [("D1", act.at(20)), ("T-patrol", act.at(30)),
                                                                 ("T-stock", act.at(60))]
    called = {(t["episode"], t["person_id"]): t["state"] for t in s["targets"]}
    assert called[("convene/0", act.CMD_IV)] == "acknowledged" and called[("notice/D1", act.LEAD)] == "acknowledged"

    s = replay_activation(rows, act.at(35))  # both past their limits; the superior was called about T-patrol
    assert {d["key"]: d["overdue"] for d in s["time_limits"]} == {"T-patrol": True, "T-stock": False}
    assert s["directives"][0]["state"] == "late" and s["directives"][0]["late_by_s"] == 300
    assert any(t["episode"] == "overdue/T-patrol/0" and t["state"] == "escalated" for t in s["targets"])

    s = replay_activation(rows, act.at(41))
    assert s["level"] == "III" and [(h["from"], h["to"], h["by"]) for h in s["levels"]] == [
        (None, "IV", act.CMD_IV), ("IV", "III", act.CMD_III)]
    assert s["commander_post"] == "deputy_district_head" and "T-road" in {d["key"] for d in s["time_limits"]}
    assert s["levels"][0]["until"] == act.at(40) and s["levels"][1]["until"] is None

    s = replay_activation(rows, act.at(61))
    assert {t["id"]: t["state"] for t in s["tasks"]} == {"T-patrol": "late", "T-stock": "on_time", "T-road": "open"}
    assert [d["key"] for d in s["time_limits"]] == ["T-road", "reinforcement/1"]

    s = replay_activation(rows, act.at(91))
    assert s["status"] == "terminated" and s["level"] == "III" and s["time_limits"] == []
    assert s["review_workflow_id"] == "review-INC-1" and s["reinforcements"][0]["state"] == "on_time"
    assert {t["id"]: t["state"] for t in s["tasks"]}["T-road"] == "closed"
    assert replay_activation(rows, act.at(-1))["status"] == "not started"


def test_reporting_chain_time_limits_reports_and_calls_at_instants():
    from store.replay import replay_reporting

    rules = load_or_raise(DEFINITIONS).reporting_rules().model
    seq = iter(range(1, 100))
    rows: list[Row] = []

    def ev(kind: str, minutes: float, step: str, channel: str | None = None, **p) -> None:
        rows.append(Row(next(seq), kind, _at(minutes), "p-cadre", channel, step, "incident-I1", p))

    ev("incident.received", 0, "received", severity="IV", title="坍塌",
       deadlines={"verbal": _at(30).isoformat(), "written": _at(60).isoformat()})
    ev("report.verbal.overdue", 30, "deadline/verbal/overdue", deadline="verbal", label="口头报告", due_at=_at(30).isoformat())
    ev("report.escalation.sent", 30, "send/overdue/verbal/overdue/0.0/p-chief/sms", "sms", episode="overdue/verbal",
       target="overdue", person_id="p-chief", purpose="notify", status="sent")
    ev("report.verbal.made", 35, "verbal", to_whom="区政府总值班室")
    ev("report.verbal.late", 35, "deadline/verbal/late", deadline="verbal", late_by_s=300)
    ev("report.escalation.canceled", 35, "overdue/verbal/x", episode="overdue/verbal", target="overdue",
       person_id="p-chief", state="canceled")
    ev("report.written.drafted", 40, "report/0/v1", seq=0, label="书面报告", version=1)
    ev("report.written.approved", 45, "report/0/v1/review", seq=0, label="书面报告", version=1, severity="IV")
    ev("report.written.submitted", 50, "report/0/submitted", seq=0, label="书面报告")

    s = replay_reporting(rows, _at(31), rules)
    limits = {d["key"]: d for d in s["time_limits"]}
    assert limits["verbal"]["state"] == "overdue" and limits["written"]["state"] == "open"
    assert s["open_limits"] == ["verbal", "written"]
    assert [(t["episode"], t["person_id"], t["state"]) for t in s["targets"]] == [("overdue/verbal", "p-chief",
                                                                                   "notified")]
    assert s["deadlines_known"] and s["deadlines"][0]["due"] == _at(40)  # the overdue policy waits 10 min
    s = replay_reporting(rows, _at(41), rules)
    assert {d["key"]: d["state"] for d in s["time_limits"]} == {"verbal": "late", "written": "open"}
    assert s["reports"][0]["state"] == "in_review" and s["targets"][0]["state"] == "canceled"
    s = replay_reporting(rows, _at(51), rules)
    limits = {d["key"]: d for d in s["time_limits"]}
    assert limits["written"]["state"] == "on_time" and limits["followup_1"]["label"] == "续报一"
    assert limits["followup_1"]["due_at"] == _at(50) + timedelta(hours=24)  # IV: every 24 h, from the rules
    assert replay_reporting(rows, _at(51))["time_limits"][-1]["due_at"] is None  # without the rules: unknown


async def test_subject_listing_with_filters_and_slashes(db_url):
    import httpx

    from api.app import create_app
    from store.auth import create_token

    with session_scope() as s:
        append(s, [NewEvent(subject="activation/A1", kind=e.kind, step_id=e.step_id, workflow_id=e.workflow_id,
                            at=e.at, channel=e.channel, actor=e.actor, payload=e.payload) for e in act.trail()])
        sup, staff = create_token(s, "supervisor"), create_token(s, "duty_staff")
    app = create_app()
    h = {"Authorization": f"Bearer {sup}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        everything = (await api.get("/api/audit/activation/A1", headers=h)).json()
        assert everything["count"] == everything["chain_length"] == len(act.trail())
        tasks = (await api.get("/api/audit/activation/A1", params={"kind": "activation.task.accepted"}, headers=h)).json()
        assert [e["payload"]["item"] for e in tasks["events"]] == ["T-patrol"]
        window = (await api.get("/api/audit/activation/A1", headers=h, params={
            "since": act.at(20).isoformat(), "until": act.at(60).isoformat(), "actor": act.CMD_III})).json()
        assert [e["kind"] for e in window["events"]] == ["activation.level.changed", "activation.task.opened",
                                                         "activation.task.accepted",
                                                         "activation.reinforcement.requested"]
        page = (await api.get("/api/audit/activation%2FA1", params={"limit": 2}, headers=h)).json()
        assert page["count"] == 2 and page["next_after_seq"] == page["events"][-1]["seq"]
        assert (await api.get("/api/audit/activation/A1", headers={"Authorization": f"Bearer {staff}"})).status_code == 403
        assert (await api.get("/api/audit/nothing/here", headers=h)).status_code == 404
        r = await api.get("/api/audit/activation/A1", params={"since": "2026-07-01T03:00:00"}, headers=h)
        assert r.status_code == 422 and "time zone" in r.json()["detail"]
        assert (await api.get("/api/audit/verify", headers=h)).json()["ok"]  # not taken for a subject
        state = (await api.get("/api/audit/activation/A1/replay", params={"at": act.at(45).isoformat()}, headers=h)).json()
        assert state["kind"] == "activation" and state["level"] == "III" and state["subject"] == "activation/A1"


def test_an_activations_escalation_episodes_show_who_was_called():
    """Events with an episode and a target are replayed as a call-out, whatever the procedure's prefix: here a
    directive's follow-up calling a department head, who answers."""
    from store.replay import replay_activation

    rows = act.trail()[:3]
    base = dict(episode="directive/d1", target="dept/D01")
    rows.append(Row(100, "directive.escalation.sent", act.at(51), "system", "sms",
                    "send/directive/d1/dept/D01/0.0/p-D01/sms", act.WID,
                    {**base, "person_id": "p-D01", "purpose": "notify", "status": "sent"}))
    rows.append(Row(101, "directive.escalation.ack", act.at(53), "p-D01", "sms", "directive/d1/ack", act.WID,
                    {**base, "person_id": "p-D01", "state": "acknowledged"}))
    s = replay_activation(rows, act.at(52))
    assert ("directive/d1", "p-D01", "notified") in [(t["episode"], t["person_id"], t["state"]) for t in s["targets"]]
    assert next(t for t in replay_activation(rows, act.at(54))["targets"] if t["episode"] == "directive/d1")["state"] \
        == "acknowledged"


def test_a_terminated_activation_owes_nothing_from_the_instant_it_ends():
    """The workflow writes each item's ".closed" a moment after "activation.terminated" (which carries the time
    of the termination): at that instant no time limit is open any more."""
    from store.replay import replay_activation

    rows = [r for r in act.trail() if r.kind != "activation.task.closed"]
    ended = next(r for r in rows if r.kind == "activation.terminated")
    rows.append(Row(99, "activation.task.closed", ended.at + timedelta(seconds=2), "system", None, "item/T-road/closed",
                    act.WID, {"item": "T-road", "title": "积水路段交通管制", "reason": "响应终止"}))
    s = replay_activation(rows, ended.at)
    assert s["time_limits"] == [] and {t["id"]: t["status"] for t in s["tasks"]}["T-road"] == "closed"
    assert replay_activation(rows, ended.at - timedelta(seconds=1))["time_limits"][0]["key"] == "T-road"
