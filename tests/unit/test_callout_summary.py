"""The call-out's closing summary (activities/callout.py `summarize`) read from streamed plain rows equals the one
read from ORM objects: acknowledged per tier, answered late, never answered, escalations, channels, delays."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from activities.callout import summarize, summary_rows
from store.callouts import CalloutTarget
from store.db import session_scope
from tests.factories import running_callout

START = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


def _targets(s, cid: str) -> None:
    running_callout(s, cid, START)
    for n in range(2_500):  # more than one streamed chunk
        tier = ("departments", "towns", "villages")[n % 3]
        first = START + timedelta(seconds=n % 50)
        acked = n % 4 != 0
        late = acked and n % 20 == 1
        s.add(CalloutTarget(
            callout_id=cid, target_key=f"{tier}/{n}", tier=tier, position_code="x", org_unit_id="u",
            person_id=f"p-{n}", name=f"责任人{n}", state="acknowledged" if acked and not late else "unreachable",
            acknowledged_at=first + timedelta(seconds=30 + n % 400) if acked else None,
            ack_channel=("sms", "voice", "link")[n % 3] if acked else None, ack_by=f"p-{n}" if acked else None,
            ack_late=late, escalated_to=[f"p-{n}.deputy"] if n % 4 == 0 else [],
            attempts=[{"purpose": "notify", "at": first.isoformat(), "channel": "sms", "status": "sent"},
                      {"purpose": "notify", "at": (first + timedelta(seconds=5)).isoformat(), "channel": "voice"}],
            spec={"person": {"person_id": f"p-{n}", "name": f"责任人{n}", "mobile": "+8613800000000"}}))


def test_streamed_rows_give_the_same_summary_as_the_orm_objects(db_url):
    with session_scope() as s:
        _targets(s, "c-1")
    with session_scope(write=False) as s:
        streamed = summarize(summary_rows(s, "c-1"), START)
        whole = summarize(list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == "c-1"))), START)
    assert streamed == whole
    assert streamed["total"] == 2_500 and streamed["acknowledged"] == 1_750
    assert streamed["answered_late"] == 125 and len(streamed["never_answered"]) == 625
    assert streamed["escalations"] == 625 and streamed["median_ack_s"] is not None
    assert set(streamed["per_tier"]) == {"departments", "towns", "villages"}


async def test_the_callouts_result_names_a_bounded_number_the_row_and_the_trail_all(db_url):
    """`finish` returns the call-out's result through Temporal, which refuses a payload over 2 MB: at 100,000
    persons its lists of who never answered and who answered late were 15 MB and the call-out could not end
    (bench/callout.py's worker log). The result has the counts and the first names; the row and the
    `callout.summary` event keep everyone."""
    from temporalio.testing import ActivityEnvironment

    from activities.callout import RESULT_NAMES, finish
    from store.audit import list_events
    from store.callouts import Callout
    from workflows.callout import CalloutEnd

    with session_scope() as s:
        _targets(s, "c-2")
    result = await ActivityEnvironment().run(finish, CalloutEnd(callout_id="c-2", workflow_id="c-2",
                                                                status="completed"))
    assert result.total == 2_500 and result.acknowledged == 1_750
    assert len(result.summary["never_answered"]) == RESULT_NAMES and result.summary["never_answered_count"] == 625
    assert len(result.summary["late"]) == RESULT_NAMES and result.summary["answered_late"] == 125
    with session_scope(write=False) as s:
        row = s.get(Callout, "c-2")
        [event] = list_events(s, subject="c-2", kind="callout.summary")
    for kept in (row.summary, event.payload):
        assert len(kept["never_answered"]) == 625 and len(kept["late"]) == 125
    assert result.summary["never_answered"] == row.summary["never_answered"][:RESULT_NAMES]
