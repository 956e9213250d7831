"""A live board's shared poll reads again the 2 s before the newest change it has seen (a row stamped before its
transaction committed), but makes and sends again only the rows that changed since it sent them
(api/services/board.py `changed_rows` with `sent`): under a burst of answers, making the same rows again and again was
a sixth of the API's time. A watcher's own catch-up (`sent` None) reads the window whole."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from api.console.pages import library
from api.services.board import changed_rows, rows_of
from store.answers import mark_answered
from store.callouts import Callout, CalloutTarget
from store.db import session_scope

CID = "CO-board-poll"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # (answers are stamped now)


def _callout() -> dict[str, int]:
    with session_scope() as s:
        s.add(Callout(id=CID, plan_id="p", plan_version="1", level="orange", category="heavy_rain"))
        s.flush()
        rows = [CalloutTarget(callout_id=CID, target_key=f"villages/{p}", tier="villages", position_code="resp",
                              org_unit_id="v", person_id=p, updated_at=T0) for p in ("p1", "p2", "p3", "p4")]
        s.add_all(rows)
        s.flush()
        return {t.person_id: t.id for t in rows}


def _poll(since: datetime, sent: dict | None) -> tuple[dict[str, dict], datetime]:
    with session_scope(write=False) as s:
        rows, newest = changed_rows(s, library(), CID, since, sent)
    return {r["person_id"]: r for r in rows}, newest


def _touch(person: str, at: datetime, state: str) -> None:
    """A target's row written as a shard's flush writes it, stamped `at`."""
    with session_scope() as s:
        s.execute(update(CalloutTarget).where(CalloutTarget.callout_id == CID, CalloutTarget.person_id == person)
                  .values(state=state, updated_at=at))


def test_the_shared_poll_sends_a_row_again_only_once_it_has_changed(db_url: str) -> None:
    ids = _callout()
    sent: dict = {}
    window = T0 - timedelta(seconds=1)
    first, newest = _poll(window, sent)
    assert set(first) == {"p1", "p2", "p3", "p4"} and newest == T0
    assert _poll(window, sent)[0] == {}, "nothing changed: nothing made again"
    assert set(_poll(window, None)[0]) == set(first), "a watcher's own catch-up reads the window whole"

    _touch("p2", T0 + timedelta(seconds=1), "notified")
    again, newest = _poll(window, sent)
    assert set(again) == {"p2"} and again["p2"]["state"] == "notified" and newest == T0 + timedelta(seconds=1)

    # a row stamped before the newest change the poll has seen, committed after it: the overlap finds it, and it
    # is new to the memo
    _touch("p4", T0 + timedelta(seconds=0.5), "notified")
    assert set(_poll(window, sent)[0]) == {"p4"}

    # an answer shown: its row goes again, answered; then not again
    with session_scope() as s:
        mark_answered(s, [(CID, "p3", T0 + timedelta(seconds=2))])
    answered = _poll(window, sent)[0]
    assert set(answered) == {"p3"} and answered["p3"]["answered_at"] == (T0 + timedelta(seconds=2)).isoformat()
    assert _poll(window, sent)[0] == {}

    # an answer the board was told of (rows_of) and sent at once: the next poll does not send it again
    with session_scope() as s:
        told = mark_answered(s, [(CID, "p1", T0 + timedelta(seconds=3))])
    with session_scope(write=False) as s:
        assert [r["person_id"] for r in rows_of(s, library(), CID, [i for _, i in told], sent)] == ["p1"]
    assert told == [(CID, ids["p1"])] and _poll(window, sent)[0] == {}

    # a board whose page is full is made only the rows it shows
    _touch("p2", T0 + timedelta(seconds=4), "escalated")
    _touch("p4", T0 + timedelta(seconds=4), "escalated")
    with session_scope(write=False) as s:
        page, _ = changed_rows(s, library(), CID, window, sent, frozenset({ids["p2"]}))
    assert [r["person_id"] for r in page] == ["p2"]
    assert set(_poll(window, sent)[0]) == {"p4"}, "made once a board shows it"

    # the memo keeps only what the window still holds
    assert _poll(datetime.now(UTC) + timedelta(days=1), sent)[0] == {} and sent == {}
