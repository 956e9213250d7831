"""A reporting chain settled by the end of the response or the review (issue 19 #5), read back from its events:
the statistics, the timeline and the replay say 漏报 / 未报(已终止), never 未到期; and how a limit is settled."""
from __future__ import annotations

from datetime import timedelta

from store.replay.reporting import replay_reporting
from store.review import reporting_stats, timeline
from tests.unit.test_review_stats import T0, Events
from workflows.reporting.models import Deadline, settle_as


def settled_chain() -> list:
    """Verbal report never made; written report 10 min late; 续报一 not due when the review was signed off."""
    e = Events("incident-INC-S")
    due = {"verbal": T0 + timedelta(minutes=30), "written": T0 + timedelta(hours=1)}
    e.add("incident.received", 0, "received", title="脚手架坍塌", severity="IV",
          deadlines={k: v.isoformat() for k, v in due.items()})
    e.add("report.verbal.overdue", 30, "deadline/verbal/overdue", deadline="verbal", label="口头报告",
          due_at=due["verbal"].isoformat())
    e.add("report.written.submitted", 70, "report/0/submitted", seq=0, label="书面报告", on_time=False)
    e.add("report.written.late", 70, "deadline/written/late", deadline="written", label="书面报告", late_by_s=600,
          mark="迟报10分钟", due_at=due["written"].isoformat())
    e.add("report.verbal.omitted", 200, "deadline/verbal/omitted", deadline="verbal", label="口头报告",
          due_at=due["verbal"].isoformat(), settled_by="review/INC-S")
    e.add("report.followup.lapsed", 200, "deadline/followup_1/lapsed", deadline="followup_1", label="续报一",
          due_at=(T0 + timedelta(hours=25)).isoformat(), settled_by="review/INC-S")
    e.add("report.settled", 200, "settled", by="review/INC-S", omitted=["verbal"], lapsed=["followup_1"],
          late=["written"])
    return e.rows


def test_statistics_count_the_settled_limits_and_none_is_open():
    st = reporting_stats("INC-S", settled_chain())
    assert {d["key"]: d["state"] for d in st["deadlines"]} == {"verbal": "omitted", "written": "late",
                                                               "followup_1": "lapsed"}
    c = st["compliance"]
    assert (c["omitted"], c["late"], c["lapsed"], c["open"], c["overdue"]) == (1, 1, 1, 0, 0)
    assert c["on_time_rate"] == 0.0  # of the two limits owed, none on time: the lapsed one is not counted
    assert st["settled_by"] == "review/INC-S" and st["closed_at"] == (T0 + timedelta(minutes=200)).isoformat()


def test_the_timeline_and_the_replay_say_omitted_and_lapsed():
    lines = [r["text"] for r in timeline({"INC-S": settled_chain()})]
    assert "口头报告漏报" in lines and "续报一未报(已终止)" in lines
    assert "复盘报告签发,信息报送随之办结:漏报1项、未报(已终止)1项" in lines
    state = replay_reporting(settled_chain(), T0 + timedelta(hours=30))
    assert {d["key"]: d["state"] for d in state["time_limits"]} == {"verbal": "omitted", "written": "late",
                                                                    "followup_1": "lapsed"}
    assert state["status"] == "closed" and state["open_limits"] == [] and state["settled_by"] == "review/INC-S"


def test_how_a_limit_is_settled():
    def limit(kind: str, due_in_min: int) -> Deadline:
        due = T0 + timedelta(minutes=due_in_min)
        return Deadline(key=kind, kind=kind, label=kind, due_at=due, remind_at=due)

    assert settle_as(limit("verbal", 30), T0) == "omitted"  # owed for every incident: never made, whatever the time
    assert settle_as(limit("written", 60), T0) == "omitted"
    assert settle_as(limit("followup", 60), T0) == "lapsed"  # not yet due: no longer owed
    assert settle_as(limit("followup", -1), T0) == "omitted"  # past its limit
