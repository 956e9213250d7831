"""会商研判: the register's experts of the fields a response needs convened (SMS with the answer link, then voice: the
plan's member policy, the acknowledgement path of every other call of the activation), who confirmed recorded, and
the meeting's conclusions recorded against the activation. The API reads the register and hands the experts in
(`ExpertMeetingIn.experts`): the workflow holds no I/O. New updates, marked `workflow.patched(MEETINGS)` when used;
an activation that never convenes experts gives the same commands as before."""
from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.kit.events import Activation as Kinds  # the audit event kinds, defined once
    from workflows.activation.base import ActivationSteps
    from workflows.activation.messages import ActivationView, ConclusionIn, ExpertMeetingIn
    from workflows.activation.state import Conclusion, ExpertMeeting, level_zh
    from workflows.common import Event
    from workflows.escalation import Contact, Target

MEETINGS = "activation-consultation"
"""workflow.patched id: the 会商研判 step."""


class ExpertSteps(ActivationSteps):
    @workflow.update
    async def convene_experts(self, req: ExpertMeetingIn) -> ActivationView:
        self.refuse_if("meeting", req)
        workflow.patched(MEETINGS)
        now = workflow.now()
        m = ExpertMeeting(seq=len(self.s.meetings) + 1, fields=req.fields, at=req.at, place=req.place, topic=req.topic,
                          requested_by=req.actor, requested_at=now, experts=req.experts)
        self.s.meetings.append(m)
        missing = [f for f in req.fields if not any(e.field == f for e in req.experts)]
        await self.record(Event(kind=Kinds.MEETING_CONVENED, step_id=f"meeting/{m.seq}/convened", actor=req.actor,
                                at=now, payload={"seq": m.seq, "fields": m.fields, "at": m.at.isoformat(),
                                                 "place": m.place, "topic": m.topic,
                                                 "experts": [{"id": e.id, "name": e.name, "field": e.field,
                                                              "person_id": e.person_id} for e in m.experts]}))
        if missing:
            await self.record(Event(kind=Kinds.MEETING_GAP, step_id=f"meeting/{m.seq}/gap", at=now,
                                    payload={"seq": m.seq, "fields": missing}))
        zh = "、".join(dict.fromkeys(e.field_zh or e.field for e in m.experts))
        # {due}: the meeting's time, in local time, filled by the sending activity (the episode's due_at)
        text = self.says.render("experts", title=self.info.incident_title, plan=self.plan.name_zh,
                                level=level_zh(self.s.level), fields=zh, when="{due}", place=m.place,
                                topic=f"({m.topic})" if m.topic else "")
        targets = [Target(key=f"expert/{m.seq}/{e.id}", tier="expert", label=f"{e.field_zh or e.field}专家{e.name}",
                          person=Contact(person_id=e.person_id, name=e.name, mobile=e.mobile), others=self.s.duty,
                          policy=self.plan.member_policy, priority=10)
                   for e in m.experts]
        self._call("experts", str(m.seq), f"会商研判{m.seq}", text, targets, due=m.at)
        return self.view()

    @convene_experts.validator
    def _convene_ok(self, req: ExpertMeetingIn) -> None:
        self.refuse_if("meeting", req)

    @workflow.update
    async def conclude_meeting(self, req: ConclusionIn) -> ActivationView:
        self.refuse_if("conclude", req)
        m, now = next(x for x in self.s.meetings if x.seq == req.seq), workflow.now()
        c = Conclusion(text=req.text, by=req.actor, at=now, present=req.present)
        m.conclusions.append(c)
        n = len(m.conclusions)
        await self.record(Event(kind=Kinds.MEETING_CONCLUDED, step_id=f"meeting/{m.seq}/concluded/{n}", actor=req.actor,
                                at=now, payload={"seq": m.seq, "n": n, "text": c.text, "present": c.present,
                                                 "fields": m.fields,
                                                 "confirmed": [e.id for e in m.experts if e.confirmed_at]}))
        self._stop(f"experts/{m.seq}", "会商已召开", silent=True)
        return self.view()

    @conclude_meeting.validator
    def _conclude_ok(self, req: ConclusionIn) -> None:
        self.refuse_if("conclude", req)
