"""Directory import: the demo district, all-or-nothing with line numbers, upserts, CSV, area look-up."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlmodel import func, select

from store.db import dispose_all, migrate, session_scope
from store.directory import OrgUnit, Person, Position, Post, units_for_areas
from store.directory_import import (
    DEMO,
    POSITIONS,
    DirectoryImportError,
    import_directory,
    load_demo_if_empty,
)
from store.roster import DutyShift, on_duty

DEPUTY_HEADS = ["qx0003", "qx0004", "qx0005", "qx0006"]
DAY0 = date(2026, 7, 1)  # shifts from 2026-07-01 08:30 +08:00 = 00:30 UTC


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/t.db"
    migrate(url)
    yield url
    dispose_all()


@pytest.fixture
def demo(url: str) -> str:
    with session_scope(url) as s:
        assert load_demo_if_empty(s, today=DAY0)
    return url


def count(s, model, *where) -> int:
    return s.exec(select(func.count()).select_from(model).where(*where)).one()


def posts(s, **eq) -> list[Post]:
    return list(s.exec(select(Post).filter_by(**eq)))


def test_builtin_positions():
    assert [p.code for p in POSITIONS] == [
        "district_party_secretary", "district_head", "deputy_district_head", "dept_head", "duty_office_head",
        "town_party_secretary", "town_head", "town_flood_officer", "village_flood_resp", "village_head", "grid_worker"]
    assert {p.code for p in POSITIONS if p.leader} == {
        "district_party_secretary", "district_head", "deputy_district_head", "town_party_secretary"}


def test_demo_district_loads_once_with_every_post_filled(demo):
    with session_scope(demo) as s:
        assert not load_demo_if_empty(s)
        kinds = dict(s.exec(select(OrgUnit.kind, func.count()).group_by(OrgUnit.kind)).all())
        assert kinds == {"district": 1, "department": 13, "town": 10, "village": 100}  # 12 + 区政府总值班室
        assert 350 <= count(s, Person) <= 450
        assert count(s, Position) == len(POSITIONS)
        assert count(s, DutyShift) == 7 * 6  # 1 + 1 + 2 + 2 a day
        assert {u.id for u in s.exec(select(OrgUnit).where(OrgUnit.vertical_line))} == {"D03", "D04", "D08", "D09"}
        wanted = {"district": {"district_party_secretary", "district_head", "deputy_district_head"},
                  "department": {"dept_head"}, "town": {"town_party_secretary", "town_head", "town_flood_officer"},
                  "village": {"village_flood_resp", "village_head"}}
        for unit in s.exec(select(OrgUnit)):
            codes = {p.position_code for p in posts(s, org_unit_id=unit.id)}
            grid = {"grid_worker"} if unit.kind == "village" and unit.id[:9] in ("330110001", "330110002", "330110003") else set()
            assert codes == ({"duty_office_head"} if unit.id == "D13" else wanted[unit.kind] | grid), unit.id
        assert sorted(p.person_id for p in posts(s, position_code="deputy_district_head")) == DEPUTY_HEADS
        mobiles = [p.mobile for p in s.exec(select(Person))]
        assert len(set(mobiles)) == len(mobiles) and all(m.startswith("+86139") for m in mobiles)


def test_demo_superiors_and_deputies(demo):
    with session_scope(demo) as s:
        head = {p.org_unit_id: p for p in posts(s, position_code="town_head")}
        for t in range(1, 11):  # towns 1, 5, 9 -> qx0003; 2, 6, 10 -> qx0004; 3, 7 -> qx0005; 4, 8 -> qx0006
            assert head[f"330110{t:03d}"].superior_id == DEPUTY_HEADS[(t - 1) % 4]
        for p in posts(s, position_code="town_flood_officer"):
            assert p.superior_id == head[p.org_unit_id].person_id
        for p in posts(s, position_code="dept_head"):
            assert p.superior_id in DEPUTY_HEADS
        village_head = {p.org_unit_id: p.person_id for p in posts(s, position_code="village_head")}
        resp = posts(s, position_code="village_flood_resp")
        for p in resp:
            assert p.superior_id == head[p.org_unit_id[:9]].person_id
            assert p.deputy_id in (None, village_head[p.org_unit_id])
        assert sum(p.deputy_id is None for p in resp) >= 5
        assert sum(p.deputy_id is None for p in head.values()) >= 2
        assert sum(p.deputy_id is None for p in posts(s, position_code="dept_head")) >= 2
        day0 = {(x.role, x.person_id) for x in on_duty(s, datetime(2026, 7, 1, 12, tzinfo=UTC))}
        assert {("leading_leader", "qx0003"), ("duty_chief", "qx0201")} <= day0
        assert len(day0) == 6
        day1 = {(x.role, x.person_id) for x in on_duty(s, datetime(2026, 7, 2, 12, tzinfo=UTC))}
        assert {("leading_leader", "qx0004"), ("duty_chief", "qx0202")} <= day1


def test_reimport_is_a_no_op(demo):
    with session_scope(demo) as s:
        shift_ids = set(s.exec(select(DutyShift.id)))
        report = import_directory(s, DEMO, today=DAY0)
    assert report.changed == {"org_units": 0, "persons": 0, "positions": 0, "posts": 0, "shifts": 0}
    assert (report.org_units, report.persons, report.posts, report.shifts) == (124, 407, 279, 42)
    with session_scope(demo) as s:
        assert set(s.exec(select(DutyShift.id))) == shift_ids


SMALL = """\
org_units:
  - {id: 330110, name: 青溪区, kind: district}
  - {id: 330110001, name: 青溪街道, kind: town, parent: 330110}
persons:
  - {id: a, name: 甲, mobile: 13900000001}
  - {id: b, name: 乙, mobile: "139 0000 0002", mobile2: "+86 139-0000-0003"}
posts:
  - {position: town_head, org_unit: "330110001", person: a, deputy: b}
"""


def test_upsert_updates_a_changed_person_and_replaces_posts(url, tmp_path: Path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    with session_scope(url) as s:
        report = import_directory(s, path)
    assert report.changed["positions"] == len(POSITIONS)  # the built-ins come with the first import
    path.write_text(SMALL.replace("13900000001", "13900000009").replace("deputy: b", "superior: b"))
    with session_scope(url) as s:
        report = import_directory(s, path)
        assert report.changed == {"org_units": 0, "persons": 1, "positions": 0, "posts": 1, "shifts": 0}
        assert s.get(Person, "a").mobile == "+8613900000009"
        assert s.get(Person, "b").mobile2 == "+8613900000003"
        [post] = posts(s, org_unit_id="330110001")
        assert (post.person_id, post.deputy_id, post.superior_id) == ("a", None, "b")


BROKEN = """\
org_units:
  - {id: "330110", name: 青溪区, kind: district}
  - {id: D01, name: 区应急管理局, kind: department, parent: "330110"}
  - {id: "330110001001", name: 错村, kind: village, parent: D01}
  - {id: X1, name: 无名, kind: town, parent: "999"}
persons:
  - {id: p1, name: 张三, mobile: "13900001234", org_unit: D01}
  - {id: p1, name: 李四, mobile: "13900001235"}
  - {id: p2, name: 王五, mobile: "1380013"}
posts:
  - {position: dept_head, org_unit: D01, person: p9}
roster:
  rotation:
    duty_chief: [p1, p7]
    night_watch: [p2]
"""


def test_broken_file_names_every_problem_with_its_line_and_writes_nothing(url, tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with session_scope(url) as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, path)
    assert sorted(exc.value.errors) == sorted([
        "broken.yaml:4: org_units[2].parent: a village belongs to a town, not to the department 'D01'",
        "broken.yaml:5: org_units[3].parent: unknown parent org unit '999'",
        "broken.yaml:8: persons[1].id: id 'p1' repeats (first at persons[0])",
        "broken.yaml:9: persons[2].mobile: not a valid phone number: '1380013'",
        "broken.yaml:11: posts[0].person: unknown person 'p9'",
        "broken.yaml:14: roster.rotation.duty_chief[1]: unknown person 'p7'",
        ("broken.yaml:15: roster.rotation.night_watch: unknown duty role; "
         "roles: leading_leader, duty_chief, duty_cadre, duty_staff"),
    ])
    with session_scope(url, write=False) as s:
        assert count(s, OrgUnit) == count(s, Person) == count(s, Position) == 0


def test_schema_and_syntax_errors_have_lines(url, tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("org_units:\n  - {id: '1', name: x, kind: district}\n  - {id: '2', kind: town, colour: red}\n")
    with session_scope(url) as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, path)
    assert "bad.yaml:3: org_units[1].name: Field required" in exc.value.errors
    assert "bad.yaml:3: org_units[1].colour: Extra inputs are not permitted" in exc.value.errors
    path.write_text("persons:\n  - {id: a\n  - b\n")
    with session_scope(url) as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, path)
    assert exc.value.errors == [("bad.yaml:4: YAML syntax: did not find expected ',' or '}' "  # (libyaml's words)
                                 "(while parsing a flow mapping on line 2)")]


HEADER = "org_unit_id,org_unit_name,org_unit_kind,parent_id,position_code,person_id,person_name,mobile,mobile2,im_id,deputy_id,superior_id\n"


def test_csv_import_into_an_empty_database(url, tmp_path: Path):
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "330110,青溪区,district,,district_head,h,赵大,13900009990,,,,\n"
                             "330110001,青溪街道,town,330110,town_head,n1,赵六,13900009999,,zl,n2,h\n"
                             "330110001,青溪街道,town,330110,town_flood_officer,n2,孙八,13900009998,,,,n1\n")
    with session_scope(url) as s:
        report = import_directory(s, good)
    assert (report.org_units, report.persons, report.posts) == (2, 3, 3)
    with session_scope(url) as s:
        [head] = posts(s, position_code="town_head")
        assert (head.person_id, head.deputy_id, head.superior_id) == ("n1", "n2", "h")
        assert s.get(Person, "n1").org_unit_id == "330110001" and s.get(Person, "n1").im_id == "zl"
        assert import_directory(s, good).changed == dict.fromkeys(report.changed, 0)


def test_csv_errors_name_their_rows(url, tmp_path: Path):
    with session_scope(url) as s:
        import_directory(s, DEMO, today=DAY0)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "330110011,新区街道,town,330110,town_head,n1,赵六,13900009999,,,,\n"
                            "330110011,新区街道,town,330110,town_boss,n2,钱七,12345,,,,qx9999\n"
                            "330110011,新街道,town,330110,town_flood_officer,n3,周九,13900009997,,,,\n")
    with session_scope(url) as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, bad)
    assert sorted(exc.value.errors) == sorted([
        "bad.csv:3: persons[1].mobile: not a valid phone number: '12345'",
        "bad.csv:3: posts[1].position: unknown position 'town_boss'",
        "bad.csv:3: posts[1].superior: unknown person 'qx9999'",
        "bad.csv:4: org_units '330110011' differs from line 2",
    ])
    with session_scope(url) as s:
        assert s.get(OrgUnit, "330110011") is None


def test_units_for_areas(demo):
    with session_scope(demo) as s:
        ids = lambda units: sorted(u.id for u in units)
        assert ids(units_for_areas(s, ["330110001", "330110002"], [])) == ["330110001", "330110002"]
        assert ids(units_for_areas(s, ["330110003005", "330110003006"], [])) == ["330110003"]  # villages: their town
        assert len(units_for_areas(s, [], ["全区"])) == 10
        assert len(units_for_areas(s, ["330110"], [])) == 10
        assert len(units_for_areas(s, [], ["青溪区"])) == 10
        assert ids(units_for_areas(s, [], ["东湖街道、南岭街道"])) == ["330110002", "330110003"]
        assert ids(units_for_areas(s, ["330110004"], ["枫桥镇"])) == ["330110004", "330110009"]
        assert units_for_areas(s, ["999999"], ["外省"]) == []


def test_demo_roster_is_kept_a_week_ahead(demo):
    from zoneinfo import ZoneInfo

    from store.directory_import import extend_demo_roster
    from store.roster import on_duty

    tz = ZoneInfo("Asia/Shanghai")
    with session_scope(demo) as s:
        first_week = {(x.starts_at, x.role, x.person_id) for x in s.exec(select(DutyShift))}
        # three days in, the week still reaches far enough: nothing changes
        assert extend_demo_roster(s, now=datetime.combine(DAY0 + timedelta(days=3), time(12), tz)) == 0
        # six days in: the roster goes on from where it ends, the shifts already given stay
        at = datetime.combine(DAY0 + timedelta(days=6), time(12), tz)
        assert extend_demo_roster(s, now=at) == 7 * 6
        shifts = {(x.starts_at, x.role, x.person_id) for x in s.exec(select(DutyShift))}
        assert first_week <= shifts and len(shifts) == 14 * 6
        assert on_duty(s, at + timedelta(days=5))  # somebody is on duty next week
        # a month later (a stack left stopped): from the duty day in progress
        later = datetime.combine(DAY0 + timedelta(days=40), time(7), tz)  # before 08:30: yesterday's duty day
        assert extend_demo_roster(s, now=later) == 7 * 6
        assert on_duty(s, later)


def test_an_imported_directory_keeps_its_own_roster(url):
    from zoneinfo import ZoneInfo

    from store.directory_import import extend_demo_roster

    with session_scope(url) as s:
        assert extend_demo_roster(s, now=datetime(2026, 7, 1, tzinfo=ZoneInfo("Asia/Shanghai"))) == 0  # empty
        s.add(OrgUnit(id="330110", name="别的区", kind="district"))
        s.flush()
        assert extend_demo_roster(s, now=datetime(2026, 7, 1, tzinfo=ZoneInfo("Asia/Shanghai"))) == 0


def test_shared_numbers_are_imported_with_a_warning(url, tmp_path: Path, monkeypatch):
    """Issue 16, finding 4: two persons with one mobile are imported (it happens), but the import says so,
    with the line, in the report and on the command line."""
    path = tmp_path / "shared.yaml"
    path.write_text(SMALL.replace('"139 0000 0002"', "13900000001"))
    with session_scope(url) as s:
        report = import_directory(s, path)
        assert s.get(Person, "a").mobile == s.get(Person, "b").mobile  # a warning, not a refusal
    [warning] = report.warnings
    assert warning.startswith("shared.yaml:5: warning:") and "甲(a)" in warning and "乙(b)" in warning
    assert "13900000001" not in warning  # masked
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("YINGJI_DATABASE_URL", url)
    from config import get_settings
    get_settings.cache_clear()
    out = CliRunner().invoke(app, ["directory", "import", str(path)], env={"COLUMNS": "300"}, catch_exceptions=False)
    assert out.exit_code == 0 and "is shared by 甲(a)、乙(b)" in out.output
    unshared = tmp_path / "small.yaml"
    unshared.write_text(SMALL)
    with session_scope(url) as s:  # nothing shared: nothing said
        assert import_directory(s, unshared).warnings == []


def test_a_persons_language_is_imported_checked_and_kept(url, tmp_path: Path):
    """`language` (zh | en) is optional: new persons read Chinese, a file without it keeps what is stored, a wrong
    value is refused naming the person's line (YAML) or row (CSV)."""
    path = tmp_path / "lang.yaml"
    path.write_text(SMALL.replace("mobile: 13900000001}", "mobile: 13900000001, language: en}"))
    with session_scope(url) as s:
        import_directory(s, path)
    with session_scope(url) as s:
        assert (s.get(Person, "a").language, s.get(Person, "b").language) == ("en", "zh")
    path.write_text(SMALL)  # no language: a keeps English
    with session_scope(url) as s:
        assert import_directory(s, path).changed["persons"] == 0 and s.get(Person, "a").language == "en"
    path.write_text(SMALL.replace("mobile: 13900000001}", "mobile: 13900000001, language: fr}"))
    with session_scope(url) as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, path)
    assert any("persons[0].language" in e and "'zh' or 'en'" in e for e in exc.value.errors), exc.value.errors
    csv_path = tmp_path / "lang.csv"
    csv_path.write_text(HEADER.replace("superior_id\n", "superior_id,language\n")
                        + "330110001,青溪街道,town,330110,town_head,n1,赵六,13900009999,,,,,en\n"
                        + "330110001,青溪街道,town,330110,town_flood_officer,n2,孙八,13900009998,,,,n1,\n")
    with session_scope(url) as s:
        import_directory(s, csv_path)
    with session_scope(url) as s:
        assert (s.get(Person, "n1").language, s.get(Person, "n2").language) == ("en", "zh")
    csv_path.write_text(HEADER.replace("superior_id\n", "superior_id,language\n")
                        + "330110001,青溪街道,town,330110,town_head,n1,赵六,13900009999,,,,,english\n")
    with session_scope(url) as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, csv_path)
    assert any(e.startswith("lang.csv:2: ") and "language" in e for e in exc.value.errors), exc.value.errors
