"""The board's order and flags (api/services/board.py): those nobody reached and the escalated first, then those
being called, then the acknowledged, then the canceled; every call of a round failed flags a row too."""
from __future__ import annotations

from datetime import UTC, datetime

from definitions.loader import load_or_raise
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from tests.workflows.callout_helpers import DEFINITIONS

CID = "callout-order-1"


def _attempt(key: str, channel: str, status: str) -> dict:
    return {"key": f"{CID}/shard-0/{key}/0.0/p/{channel}", "channel": channel, "purpose": "notify",
            "status": status, "at": datetime.now(UTC).isoformat(), "person_id": "p"}


def test_rows_in_order_with_flags(db_url):
    lib = load_or_raise(DEFINITIONS)
    states = [("towns/a", "acknowledged", []), ("towns/b", "notified", [_attempt("towns/b", "sms", "sent")]),
              ("towns/c", "unreachable", []), ("towns/d", "canceled", []), ("towns/e", "escalated", []),
              ("towns/f", "notified", [_attempt("towns/f", "voice", "machine"), _attempt("towns/f", "sms", "failed")]),
              ("towns/g", "pending", [])]
    with session_scope() as s:
        s.add(Callout(id=CID, plan_id="heavy_rain", plan_version="x", level="orange", category="rain"))
        s.flush()
        for key, state, attempts in states:
            s.add(CalloutTarget(callout_id=CID, target_key=key, tier="towns", position_code="town_head",
                                org_unit_id="330110001", person_id=key[-1], name=key[-1], state=state, attempts=attempts))
    from api.services import board

    with session_scope(write=False) as s:
        data = board.board(s, lib, CID, None, None)
    order = [r["key"][-1] for r in data["rows"]]
    assert order[:2] == ["c", "e"]  # (equal rank: in the database's order)
    assert set(order[:3]) == {"c", "e", "f"} and order[-2:] == ["a", "d"] and set(order[3:5]) == {"b", "g"}
    flags = {r["key"][-1]: r["flag"] for r in data["rows"]}
    assert flags == {"a": "", "b": "", "c": "unreachable", "d": "", "e": "escalated", "f": "failed", "g": ""}
    f = next(r for r in data["rows"] if r["key"].endswith("/f"))
    assert f["tries"] == [["voice", "machine"], ["sms", "failed"]] and f["rank"] == 0
    assert data["progress"][""] == {"acknowledged": 1, "notified": 6, "total": 7}
    assert data["progress"]["towns"]["total"] == 7
