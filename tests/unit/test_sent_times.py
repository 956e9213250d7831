"""A send is in the audit trail at the moment the gateway took it, not when its batch was written: an answer to the
first message of a slow batch can come before the batch ends, and the trail (the replay at the answer's instant,
the time to answer) must have the message before the answer. Found by tests/e2e/test_review_api.py on a busy
machine: at the instant of a link confirmation the replay did not yet know whom the target's message went to."""
from __future__ import annotations

from sqlmodel import select

from activities.callout import flush
from store.audit import AuditEvent
from store.db import session_scope
from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio
from tests.workflows.callout_helpers import callout_input
from workflows.callout import FlushRequest
from workflows.escalation import Send


async def test_each_send_is_recorded_at_its_acceptance(db_url, monkeypatch):
    inp = callout_input()
    wid = f"{inp.callout_id}/shard-0"
    sends = [Send(key=f"{wid}/t{i}/0.0/p{i}/sms", target_key=f"t{i}", person_id=f"p{i}", name=f"甲{i}",
                  to=f"+8613900{i:06d}", channel="sms") for i in range(4)]
    with FakeTwilio() as fake:
        use_fake_twilio(monkeypatch, fake, sms_per_s=5.0)  # one send each 0.2 s: the batch lasts ~0.6 s
        result = await flush(FlushRequest(callout_id=inp.callout_id, workflow_id=wid, run_id="r", plan=inp.plan,
                                          warning=inp.warning, sends=sends, records=[]))
    with session_scope(write=False) as s:
        sent = {e.step_id: e.at for e in s.exec(select(AuditEvent).where(AuditEvent.subject == inp.callout_id,
                                                                          AuditEvent.kind == "callout.sent"))}
    assert len(result.accepted) == 4
    assert {f"send/{k.removeprefix(wid + '/')}": at for k, at in result.accepted.items()} == sent
    assert len(set(sent.values())) == 4  # each its own moment (paced by the rate), not the batch's end
