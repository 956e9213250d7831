"""Publication below orange 精准发布 (issue 20) on the time-skipping server, with the real activities, the real
database and intake: sent once to exactly the persons the plan's `publish:` section names, no answer asked,
no escalation, no voice; delivery reports counted; an Update to orange starts the call-out; a Cancel tells
those reached; the same warning twice is one publication."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from api.services.warnings import WarningIn, from_json, intake
from config import get_settings
from definitions.loader import load_or_raise
from store.db import session_scope
from store.publications import Publication
from store.warnings import Warning
from workflows.publication import PublicationSummary
from tests.workflows import callout_helpers
from tests.workflows.callout_helpers import DEFINITIONS, events, idle, outbox, report, wait_for

people, worker = callout_helpers.people, callout_helpers.worker  # the shared fixtures
HEADLINE = "青溪区气象台发布暴雨黄色预警"


def _warning(ident: str, level: str = "yellow", **kw) -> WarningIn:
    return WarningIn(identifier=ident, sender="qx-meteo", level=level, event="暴雨", headline=HEADLINE,
                     areas=["330110001"], area_descs=["第1街道"], **kw)


async def _intake(env, task_queue: str, w: WarningIn):
    settings = get_settings()
    settings.task_queue = task_queue
    return await intake(env.client, settings, load_or_raise(DEFINITIONS), from_json(w))


def _handle(env, pid: str):
    return env.client.get_workflow_handle(pid, result_type=PublicationSummary)


def _publication(pid: str) -> Publication | None:
    with session_scope(write=False) as s:
        return s.get(Publication, pid)


async def test_yellow_is_published_once_to_exactly_the_persons_the_plan_names(env, worker, people):
    res = await _intake(env, worker, _warning("pub-y1"))
    pid = res.publication_id
    assert pid == f"publication-{res.warning_id}" and res.callout_id is None and res.action == "published"
    handle = _handle(env, pid)
    await idle(handle, what="the publication to have sent and to wait for delivery reports")

    sent = outbox(pid)
    # heavy_rain publish.yellow: the listed departments' heads (the small district has D01, D02, D04), the
    # warning area's town head and flood officer, its villages' flood-control persons; by SMS and IM
    expected = {people[k] for k in ("D01.head", "D02.head", "D04.head", "330110001.head", "330110001.flood",
                                    "330110001001.resp", "330110001002.resp")}
    assert {m.person_id for m in sent} == expected
    assert sorted(m.channel for m in sent) == sorted(["sms", "im"] * len(expected))
    assert all(m.reply_code is None and m.ack_url is None for m in sent)  # nobody is asked to answer
    assert all(m.body.startswith("【预警发布】暴雨黄色预警") and "无需回复" in m.body for m in sent)
    assert not any(ch.isascii() and ch.isalpha() for ch in sent[0].body.replace(HEADLINE, ""))  # Chinese only

    # delivery reports: most delivered, one undelivered
    resp = people["330110001001.resp"]
    failing = next(m for m in sent if m.person_id == resp and m.channel == "sms")
    for m in sent:
        if m.id != failing.id and m.channel == "sms":
            await report(env.client, m, "delivered")
    await report(env.client, failing, "undelivered", detail="handset off")
    await wait_for(lambda: len(events(pid, "publication.delivery")) == len(expected), what="the reports recorded")

    # wait well past any call-out wait (10 min, 30 min): nothing more is sent, nobody is escalated to
    await env.sleep(timedelta(hours=2))
    summary = await handle.result()
    assert summary.status == "timed_out"  # the IM robot reports no delivery: the bounded wait ended it
    assert len(outbox(pid)) == len(sent)
    assert not outbox(pid, channel="voice")
    kinds = {e.kind for e in events(pid)}
    assert not any("escalat" in k or k.startswith("callout.") for k in kinds)
    assert {"publication.started", "publication.recipients_resolved", "publication.sent", "publication.summary",
            "publication.ended"} <= kinds
    assert (summary.sent, summary.delivered, summary.failed) == (2 * len(expected), len(expected) - 1, 1)
    final = events(pid, "publication.summary")[0].payload
    assert final["failed_list"][0]["person_id"] == resp and final["failed_list"][0]["status"] == "undelivered"
    assert final["rate"] == round((len(expected) - 1) / (2 * len(expected)), 4)
    assert final["per_tier"]["villages"]["failed"] == 1
    row = _publication(pid)
    assert row.status == "timed_out" and row.counts["delivered"] == len(expected) - 1 and row.ended_at


async def test_every_message_final_ends_the_publication_before_its_wait(env, worker, people):
    res = await _intake(env, worker, _warning("pub-b1", level="blue"))
    pid = res.publication_id
    handle = _handle(env, pid)
    await idle(handle, what="the publication to have sent")
    sent = outbox(pid)
    # blue: fewer (the core departments and the town's flood officer, no villages)
    assert {m.person_id for m in sent} == {people[k] for k in ("D01.head", "D02.head", "D04.head", "330110001.flood")}
    for m in sent:
        await report(env.client, m, "delivered")
    summary = await handle.result()
    assert summary.status == "completed" and summary.rate == 1.0 and summary.delivered == len(sent)


async def test_the_same_warning_twice_is_one_publication(env, worker, people):
    first = await _intake(env, worker, _warning("pub-dup"))
    again = await _intake(env, worker, _warning("pub-dup"))
    assert again.duplicate and again.publication_id == first.publication_id
    await idle(_handle(env, first.publication_id), what="the publication to have sent")
    keys = [m.idempotency_key for m in outbox(first.publication_id)]
    assert len(keys) == len(set(keys)) == 14
    with session_scope(write=False) as s:
        assert len(list(s.exec(select(Publication)))) == 1


async def test_an_update_to_orange_starts_the_call_out_and_supersedes_the_publication(env, worker, people):
    first = await _intake(env, worker, _warning("pub-up"))
    pid = first.publication_id
    handle = _handle(env, pid)
    await idle(handle, what="the publication to have sent")
    up = await _intake(env, worker, _warning("pub-up-2", level="orange", msg_type="Update",
                                             references=["qx-meteo,pub-up"]))
    assert up.action == "callout_started" and up.callout_id and up.publication_id is None
    summary = await handle.result()  # the call-out took over: the publication ends at once
    assert summary.status == "superseded"
    note = events(pid, "publication.superseded")
    assert note and note[0].payload["by"] == up.callout_id
    assert _publication(pid).superseded_by == up.callout_id
    await wait_for(lambda: outbox(up.callout_id), what="the call-out's first messages")
    with session_scope(write=False) as s:
        assert s.get(Warning, up.warning_id).callout_id == up.callout_id


async def test_a_cancel_tells_those_reached_and_a_drill_is_marked(env, worker, people):
    first = await _intake(env, worker, _warning("pub-c", drill=True))
    pid = first.publication_id
    await idle(_handle(env, pid), what="the publication to have sent")
    sent = outbox(pid)
    assert sent and all(m.body.startswith("【演练】【预警发布】") and m.drill for m in sent)
    failing = next(m for m in sent if m.channel == "sms")
    await report(env.client, failing, "failed")
    cancel = await _intake(env, worker, WarningIn(identifier="pub-c-x", sender="qx-meteo", msg_type="Cancel",
                                                  event="暴雨", references=["qx-meteo,pub-c"]))
    assert cancel.action == "publication_canceled" and cancel.publication_id != pid
    notice = _handle(env, cancel.publication_id)
    await idle(notice, what="the 解除 notice to have been sent")
    told = outbox(cancel.publication_id)
    reached = {(m.person_id, m.channel) for m in sent if m.id != failing.id}
    assert {(m.person_id, m.channel) for m in told} == reached  # the failed SMS reached nobody: not told
    assert all(m.body.startswith("【演练】【预警解除】暴雨黄色预警已解除") for m in told)
    assert events(pid, "publication.superseded")[0].payload["by"] == cancel.publication_id
