"""The yearly contact confirmation round on the time-skipping test server, with the real activities and database."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from activities.duty import local, round_deadline
from api.services import answers
from store.audit import verify
from store.db import session_scope
from store.directory import Person
from store.duty import ContactCheck, FreshnessRound, contact_status
from tests.factories import small_district
from tests.helpers import replayer
from tests.workflows.callout_helpers import wait_for
from tests.workflows.duty_helpers import duty_settings, events, kinds, outbox, row, rows, terminate
from worker import build_worker
from workflows.freshness import FreshnessInput, FreshnessRoundWorkflow, FreshnessShardWorkflow, shard_id


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        p = small_district(s, towns=2, villages=2)
        long_ago = datetime.now(UTC) - timedelta(days=500)
        for person in s.exec(select(Person)):
            person.contact_confirmed_at = long_ago
        from store.resources import RescueTeam  # a register record person a answers for (confirmed with them)
        s.add(RescueTeam(id="T-FR", name="抢险队", kind="flood", strength=10, leader_id=p["D01.head"]))
        return p


def test_the_round_is_due_before_20_april_local_time():
    settings = duty_settings().freshness
    start = datetime(2027, 3, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    due = round_deadline(settings, start, "Asia/Shanghai")
    assert due == datetime(2027, 4, 19, 16, 0, tzinfo=UTC)  # 20 April 00:00 +08:00
    assert round_deadline(settings, datetime(2027, 5, 1, tzinfo=UTC), "Asia/Shanghai").year == 2028


async def test_confirmations_reminders_bounces_and_the_close(env, db_url, people):
    queue = f"fr-{uuid.uuid4().hex[:8]}"
    settings = duty_settings().freshness.model_copy(update={"shard_size": 10})
    rid = f"freshness-test-{uuid.uuid4().hex[:6]}"
    deadline = datetime.now(UTC) + timedelta(days=31)
    with session_scope(write=False) as s:
        everyone = sorted(p.id for p in s.exec(select(Person)))
    async with build_worker(env.client, task_queue=queue):
        try:
            h = await env.client.start_workflow(FreshnessRoundWorkflow.run,
                                                FreshnessInput(settings=settings, version="t", deadline=deadline),
                                                id=rid, task_queue=queue)
            # every row sent (the provider id is written after the send, a moment after the row is claimed)
            first = await wait_for(lambda: len(rows := outbox(rid)) == len(everyone) and all(m.provider_id for m in rows)
                                   and rows, what="everyone asked")
            assert {m.person_id for m in first} == set(everyone) and {m.channel for m in first} == {"sms"}
            msg = {m.person_id: m for m in first}
            a, b, c = people["D01.head"], people["330110001.head"], people["330110002.head"]
            assert "/a/" in msg[a].body and "/confirm/" in msg[a].ack_url  # the text carries the link's short alias
            assert "通讯录核实" in msg[a].body and msg[a].reply_code
            assert f"请于{local(deadline, '%m月%d日')}前" in msg[a].body
            assert msg[a].workflow_id == shard_id(rid, everyone.index(a) // 10)
            assert len(rows(ContactCheck, round_id=rid)) == len(everyone)

            # a confirms by the link, b by replying from that phone, c's number bounces
            await answers.acknowledge(env.client, rid, a, "link", ref="link:a")
            got = await answers.sms_reply(env.client, "simulator", msg[b].to, f"收到 {msg[b].reply_code}",
                                          provider_id="t-fr-b")
            assert got["handled"] == "ack"
            await answers.gateway_report(env.client, msg[c].provider_id, "undelivered", detail="Twilio 30005")
            await wait_for(lambda: {x.person_id: x for x in rows(ContactCheck, round_id=rid)}[c].bounced,
                           what="bounce recorded")

            # a week later, a reminder to everyone else
            await env.sleep(timedelta(days=7, hours=1))
            reminders = await wait_for(lambda: [m for m in outbox(rid) if "【提醒】" in m.body], what="reminders")
            reminded = {m.person_id for m in reminders}
            assert a not in reminded and b not in reminded and c in reminded
            assert reminded == set(everyone) - {a, b}

            summary = await h.result()  # the round closes at its deadline
            assert summary.confirmed == 2 and summary.total == len(everyone)
            assert set(summary.unconfirmed) == set(everyone) - {a, b} and summary.bounced == [c]
            checks = {x.person_id: x for x in rows(ContactCheck, round_id=rid)}
            assert checks[a].state == "confirmed" and checks[a].confirmed_via == "link"
            assert checks[b].confirmed_via == "sms" and checks[c].state == "unconfirmed"
            assert sum(1 for m in outbox(rid, c)) == 3, "the first ask and two reminders"
            rnd = row(FreshnessRound, rid)
            assert rnd.status == "closed" and rnd.confirmed == 2 and rnd.bounced == 1

            now = datetime.now(UTC)
            with session_scope(write=False) as s:
                fresh = contact_status(s, [a, b, c], now, settings.stale_after, settings.failing_window)
                assert not fresh[a]["stale"] and not fresh[b]["stale"] and fresh[c]["stale"]
                assert fresh[c]["failing"] and not fresh[a]["failing"]
                assert s.get(Person, a).contact_confirmed_at > now - timedelta(minutes=5)
                from store.resources import RescueTeam
                assert s.get(RescueTeam, "T-FR").confirmed_at > now - timedelta(minutes=5)  # the register's too
                assert verify(s, rid).ok
            got = kinds(rid)
            assert got[0] == "freshness.opened" and got[-1] == "freshness.closed"
            assert {"freshness.sent", "freshness.ack", "freshness.delivery", "freshness.repeat"} <= set(got)
            history_replayer = replayer(FreshnessRoundWorkflow, FreshnessShardWorkflow)
            await history_replayer.replay_workflow(await h.fetch_history())
            await history_replayer.replay_workflow(await env.client.get_workflow_handle(shard_id(rid, 0)).fetch_history())
            closed = events(rid, "freshness.closed")[0].payload
            assert closed["bounced"] == [c] and len(closed["unconfirmed"]) == len(everyone) - 2
        finally:
            await terminate(env.client, [rid, *[shard_id(rid, n) for n in range(10)]])
