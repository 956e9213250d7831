"""A 500-person shard's flush goes to its activity as ids and a packed body, not as rows (issue 15,
finding 3: inputs of 527-550 KB went past Temporal's 512 KB warning, decoded on the worker's event loop)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.contrib.pydantic import pydantic_data_converter

from activities.callout import expand, unpack
from store.callouts import CalloutTarget
from store.db import session_scope
from tests.factories import running_callout
from tests.workflows.callout_helpers import callout_input
from workflows.callout import FlushBody, FlushRequest, SendRef
from workflows.escalation import TARGET, Contact, Escalation, Target

N = 500


def encoded(obj) -> int:
    [payload] = asyncio.run(pydantic_data_converter.encode([obj]))
    return len(payload.data)


def shard() -> tuple:
    inp = callout_input()
    policy = next(iter(inp.plan.policies))
    targets = [Target(key=f"villages/33011000{i % 9 + 1}{i:04d}/village_flood_resp", tier="villages",
                      position="village_flood_resp", org_unit=f"33011000{i % 9 + 1}{i:04d}",
                      label=f"第{i % 9 + 1}街道第{i}社区 村(社区)防汛责任人 防汛责任人{i}",
                      person=Contact(person_id=f"p-{i}.resp", name=f"防汛责任人{i}", mobile=f"+8613{i:09d}", im_id=f"im-{i}"),
                      deputy=Contact(person_id=f"p-{i}.head", name=f"社区主任{i}", mobile=f"+8615{i:09d}"),
                      superior=Contact(person_id=f"p-{i % 9}.town", name=f"街道主任{i % 9}", mobile=f"+8617{i:09d}"),
                      others={"duty_chief": Contact(person_id="p-chief", name="值班长", mobile="+8618000000001")},
                      policy=policy) for i in range(N)]
    return inp, Escalation.start(f"{inp.callout_id}/shard-0", inp.plan.policies, targets)


def test_a_500_person_flush_is_small_and_comes_back_whole():
    inp, esc = shard()
    now = datetime.now(UTC)
    first = esc.advance(now)
    escalation = esc.advance(esc.next_deadline())  # timeouts recorded, the next round sent
    for actions in (first, escalation, esc.cancel(now, "canceled")):
        rows = FlushRequest(callout_id=inp.callout_id, workflow_id="w", run_id="r", plan=inp.plan,
                            warning=inp.warning, sends=actions.sends, records=actions.records)
        body = FlushBody(refs=[SendRef.of(s) for s in actions.sends], records=actions.records)
        packed = FlushRequest(callout_id=inp.callout_id, workflow_id="w", run_id="r", plan=inp.plan,
                              warning=inp.warning, packed=body.pack())
        before, after = encoded(rows), encoded(packed)
        print(f"{len(actions.sends)} sends, {len(actions.records)} records: {before / 1000:.0f} KB as rows, "
              f"{after / 1000:.0f} KB as ids, packed")
        assert after < 64_000, after
        assert FlushBody.unpack(packed.packed) == body


def test_sends_by_reference_come_back_as_the_escalation_made_them(db_url):
    """`expand` completes each reference from its target's stored spec (streamed, a spec at a time) in the batch's
    order, after the whole sends: each round from the first (each person's SMS and IM) to the escalation (each
    target's deputy), directly and through the packed body."""

    inp, esc = shard()
    with session_scope() as s:
        running_callout(s, inp.callout_id)
        for t in (st.target for st in esc.targets.values()):
            s.add(CalloutTarget(callout_id=inp.callout_id, target_key=t.key, tier=t.tier, position_code=t.position,
                                org_unit_id=t.org_unit, person_id=t.person.person_id, name=t.label,
                                spec=TARGET.dump_python(t, mode="json")))
    rounds = [esc.advance(datetime.now(UTC))]
    while not any(x.purpose == "escalate" for x in rounds[-1].sends) and len(rounds) < 10:
        rounds.append(esc.advance(esc.next_deadline()))  # the person again (a call), then the deputy
    assert {x.person_id for x in rounds[-1].sends} >= {"p-1.head", "p-2.head"}, "no escalation round"
    for actions in rounds:
        whole, by_ref = actions.sends[:3], actions.sends[3:]
        refs = [SendRef.of(x) for x in by_ref]
        common = dict(callout_id=inp.callout_id, workflow_id="w", run_id="r", plan=inp.plan, warning=inp.warning,
                      sends=whole)
        assert expand(FlushRequest(**common, refs=refs)) == actions.sends
        packed = FlushRequest(**common, packed=FlushBody(refs=refs).pack())
        assert unpack(packed).sends == actions.sends
        assert len({(x.person_id, x.channel) for x in by_ref}) == len(by_ref)
