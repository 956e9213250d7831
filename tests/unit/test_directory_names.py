"""People's names for the console's rows (api/services/directory.py `names`): exactly the people asked for, however
many. Past 1,000 ids it once read the whole directory and gave every name in it: on every poll of a live board once a
100,000-person call-out had escalated (a tenth of its API's time in a py-spy, 8 Dec 2026)."""
from __future__ import annotations

from sqlalchemy import event, insert

from api.services import directory
from store.db import get_engine, session_scope
from store.directory import Person


def test_the_names_asked_for_and_no_others_in_a_few_reads(db_url: str, monkeypatch) -> None:
    with session_scope() as s:
        s.execute(insert(Person.__table__), [{"id": f"p{i}", "name": f"姓名{i}", "mobile": f"+86138{i:08d}"}
                                             for i in range(3000)])
    asked = {f"p{i}" for i in range(0, 3000, 2)} | {"", "nobody"}
    statements: list[str] = []

    def note(conn, cursor, statement, *rest) -> None:
        statements.append(statement)

    engine = get_engine(write=False)
    event.listen(engine, "before_cursor_execute", note)
    try:
        with session_scope(write=False) as s:
            found = directory.names(s, asked)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert found == {f"p{i}": f"姓名{i}" for i in range(0, 3000, 2)}
    reads = [q for q in statements if "FROM person" in q]
    assert len(reads) == 2 and all(" IN " in q for q in reads), reads  # 1,501 ids, 900 a read

    monkeypatch.setattr(directory, "WHOLE_DIRECTORY_FROM", 1000)  # a call-out's every target: one read of all
    with session_scope(write=False) as s:
        assert directory.names(s, asked) == found
