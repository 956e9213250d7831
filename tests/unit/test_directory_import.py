"""Directory import: the demo district, all-or-nothing with line numbers, CSV, area look-up."""
from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import func, select

from store.db import session_scope
from store.directory import OrgUnit, Person, Post, units_for_areas
from store.directory_import import DEMO, DirectoryImportError, import_directory, load_demo_if_empty
from store.roster import on_duty


def count(s, model, *where):
    return s.exec(select(func.count()).select_from(model).where(*where)).one()


def test_demo_district_loads_once_with_every_post_filled(db_url):
    with session_scope() as s:
        assert load_demo_if_empty(s, today=date(2026, 7, 1))
    with session_scope() as s:
        assert not load_demo_if_empty(s)
        assert count(s, OrgUnit, OrgUnit.kind == "department") == 13  # 12 + the general duty office
        assert count(s, OrgUnit, OrgUnit.kind == "town") == 10
        assert count(s, OrgUnit, OrgUnit.kind == "village") == 100
        for unit in s.exec(select(OrgUnit).where(OrgUnit.kind == "village")):
            codes = {p.position_code for p in s.exec(select(Post).where(Post.org_unit_id == unit.id))}
            assert codes == {"village_flood_resp", "village_head"}
        missing = count(s, Post, Post.position_code.in_(["dept_head", "town_head", "village_flood_resp"]),
                        Post.deputy_id.is_(None))
        assert 9 <= missing <= 12  # a few deputies deliberately missing
        duty = {x.role for x in on_duty(s, datetime(2026, 7, 2, 12, tzinfo=UTC))}
        assert duty == {"leading_leader", "duty_chief", "duty_cadre", "duty_staff"}
        assert all(p.mobile.startswith("+86") for p in s.exec(select(Person)))


def test_reimport_is_a_no_op(db_url):
    with session_scope() as s:
        import_directory(s, DEMO)
    with session_scope() as s:
        report = import_directory(s, DEMO)
    assert report.changed == {"org_units": 0, "persons": 0, "positions": 0, "posts": 0}


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
"""


def test_broken_file_names_every_problem_with_its_line_and_writes_nothing(db_url, tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with session_scope() as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, path)
    errors = "\n".join(exc.value.errors)
    assert "broken.yaml:4: org_units[2].parent: a village belongs to a town" in errors
    assert "broken.yaml:5: org_units[3].parent: unknown parent org unit '999'" in errors
    assert "broken.yaml:8: persons[1].id: id 'p1' repeats" in errors
    assert "broken.yaml:9: persons[2].mobile: not a valid phone number: '1380013'" in errors
    assert "broken.yaml:11: posts[0].person: unknown person 'p9'" in errors
    with session_scope(write=False) as s:
        assert count(s, OrgUnit) == 0 and count(s, Person) == 0


def test_csv_import_and_an_error_on_its_row(db_url, tmp_path: Path):
    with session_scope() as s:
        import_directory(s, DEMO)
    header = "org_unit_id,org_unit_name,org_unit_kind,parent_id,position_code,person_id,person_name,mobile,mobile2,im_id,deputy_id,superior_id\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "330110011,新区街道,town,330110,town_head,n1,赵六,13900009999,,,,\n")
    with session_scope() as s:
        report = import_directory(s, good)
    assert report.posts == 1
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "330110011,新区街道,town,330110,town_head,n1,赵六,13900009999,,,,\n"
                            "330110011,新区街道,town,330110,town_boss,n2,钱七,12345,,,,\n")
    with session_scope() as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, bad)
    errors = "\n".join(exc.value.errors)
    assert "bad.csv:3: persons[1].mobile" in errors and "bad.csv:3: posts[1].position: unknown position 'town_boss'" in errors


def test_units_for_areas(db_url):
    with session_scope() as s:
        import_directory(s, DEMO)
        ids = lambda units: sorted(u.id for u in units)  # noqa: E731
        assert ids(units_for_areas(s, ["330110001", "330110002"], [])) == ["330110001", "330110002"]
        assert ids(units_for_areas(s, ["330110003005"], [])) == ["330110003"]  # a village code: its town
        assert len(units_for_areas(s, [], ["全区"])) == 10
        assert len(units_for_areas(s, ["330110"], [])) == 10
        assert ids(units_for_areas(s, [], ["东湖街道、南岭街道"])) == ["330110002", "330110003"]
        assert units_for_areas(s, ["999999"], ["外省"]) == []
