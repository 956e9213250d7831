"""The resource register 应急资源: the demo register, all-or-nothing import with `file:line: path: problem`, CSV,
upserts, stock alerts, each unit's duty phone in the directory, and a 2,000-record register."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import func, select

from store.db import dispose_all, migrate, session_scope
from store.directory import OrgUnit
from store.directory_import import DirectoryImportError, import_directory, load_demo_if_empty
from store.resources import (Equipment, Expert, RescueTeam, Shelter, StockLine, SupplyDepot, counts, records,
                             stock_alerts)
from store.resources_import import DEMO, RegisterImportError, import_register, load_demo_if_empty as load_register

DAY0 = date(2026, 7, 1)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/t.db"
    migrate(url)
    with session_scope(url) as s:
        assert load_demo_if_empty(s, today=DAY0)
    yield url
    dispose_all()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_demo_register_loads_once_and_reimports_unchanged(url):
    with session_scope(url) as s:
        assert load_register(s)
        assert not load_register(s)
    with session_scope(url) as s:
        assert counts(s) == {"teams": 10, "equipment": 7, "depots": 3, "experts": 6, "shelters": 5}
        assert s.exec(select(func.count()).select_from(StockLine)).one() == 12
        team = s.get(RescueTeam, "T-FL-01")
        assert (team.kind, team.strength, team.status, team.duty_phone) == ("flood", 40, "available", "+8657186900202")
        assert team.equipment == ["大流量排涝泵车", "冲锋舟", "移动发电机"]
        assert s.get(Expert, "X-05").person_id == "qx0100"
        report = import_register(s, DEMO)
    assert report.counts["teams"] == 10 and report.counts["stock"] == 12
    assert not any(report.changed.values()), report.changed


def test_units_carry_their_duty_phone(url):
    with session_scope(url) as s:
        assert s.get(OrgUnit, "D13").duty_phone == "+8657186900000"  # 区政府总值班室
        assert s.get(OrgUnit, "330110004").duty_phone == "+8657186910004"
        assert all(u.duty_phone for u in s.exec(select(OrgUnit).where(OrgUnit.kind.in_(("department", "town")))))


def test_a_bad_unit_duty_phone_is_named_with_its_line(url, tmp_path):
    f = _write(tmp_path, "d.yaml", "org_units:\n- id: D99\n  name: 测试局\n  kind: department\n  parent: '330110'\n"
                                   "  duty_phone: '12'\n")
    with session_scope(url) as s, pytest.raises(DirectoryImportError) as exc:
        import_directory(s, f, today=DAY0)
    assert exc.value.errors == ["d.yaml:6: org_units[0].duty_phone: not a valid phone number: '12'"]


def test_filters_by_town_and_kind(url):
    with session_scope(url) as s:
        load_register(s)
        assert [t.id for t in records(s, "teams", kind="fire_rescue")] == ["T-FR-01", "T-FR-02"]
        assert [t.id for t in records(s, "teams", town="330110004")] == ["T-FR-02", "T-MI-04"]
        assert [t.id for t in records(s, "teams", town="330110004", kind="militia")] == ["T-MI-04"]
        assert [x.id for x in records(s, "experts", kind="geology")] == ["X-02"]
        assert [x.id for x in records(s, "shelters", kind="outdoor")] == ["S-02"]
        assert [x.id for x in records(s, "equipment", town="330110001")] == ["E-003", "E-004", "E-006"]


def test_stock_below_minimum_or_past_expiry_is_flagged(url):
    with session_scope(url) as s:
        load_register(s)
        found = {(a.depot_id, a.item): a.flags for a in stock_alerts(s, date(2026, 12, 5))}
        assert found == {("DEP-01", "帐篷"): ("below_minimum",), ("DEP-01", "方便食品"): ("expired",),
                         ("DEP-02", "编织袋(沙袋)"): ("below_minimum",)}
        # the bottled water expires on 2027-08-31: flagged the day after, not on the day
        assert ("DEP-01", "瓶装饮用水") not in {(a.depot_id, a.item) for a in stock_alerts(s, date(2027, 8, 31))}
        late = {(a.depot_id, a.item): a.flags for a in stock_alerts(s, date(2027, 9, 1))}
        assert late[("DEP-01", "瓶装饮用水")] == ("expired",)
        assert [a.item for a in stock_alerts(s, date(2026, 12, 5), town="330110004")] == ["编织袋(沙袋)"]
        line = s.exec(select(StockLine).where(StockLine.depot_id == "DEP-01", StockLine.item == "帐篷")).one()
        line.quantity = 150  # at the minimum is enough
        s.flush()
        assert ("DEP-01", "帐篷") not in {(a.depot_id, a.item) for a in stock_alerts(s, date(2026, 12, 5))}


BAD = """\
teams:
  - {id: T1, name: 一队, kind: flood, strength: 10, town: "330110001", duty_phone: "0571-86900001"}
  - {id: T1, name: 二队, kind: swimming, strength: -3, town: "D01", leader: nobody}
equipment:
  - {id: E1, name: 泵, kind: pump, team: T9}
depots:
  - id: DEP-X
    name: 库
    stock:
      - {item: 沙袋, quantity: 10, unit: 条}
      - {item: 沙袋, quantity: 5, unit: 条}
experts:
  - {id: X1, name: 专家, field: flood}
shelters:
  - {id: S1, name: 馆, place: 某处, capacity: 10, town: "999"}
"""


def test_every_problem_named_with_file_and_line_and_nothing_written(url, tmp_path):
    f = _write(tmp_path, "reg.yaml", BAD)
    with session_scope(url) as s, pytest.raises(RegisterImportError) as exc:
        import_register(s, f)
    assert exc.value.errors == ["reg.yaml:3: teams[1].strength: Input should be greater than or equal to 0"]
    f.write_text(BAD.replace("strength: -3", "strength: 3"), encoding="utf-8")
    with session_scope(url) as s, pytest.raises(RegisterImportError) as exc:
        import_register(s, f)
    assert exc.value.errors == [
        "reg.yaml:3: teams[1].id: id 'T1' repeats (first at teams[0])",
        "reg.yaml:3: teams[1].town: 'D01' is a department, not a town",
        "reg.yaml:3: teams[1].leader: unknown person 'nobody'",
        "reg.yaml:15: shelters[0].town: unknown town '999'",
        "reg.yaml:3: teams[1].kind: kind 'swimming' is not one of fire_rescue, flood, forest_fire, geological, hazmat, "
        "medical, militia, police, power, traffic, social",
        "reg.yaml:5: equipment[0].team: unknown team 'T9'",
        "reg.yaml:11: depots[0].stock[1].item: item '沙袋' repeats (first at stock[0])",
        "reg.yaml:13: experts[0].mobile: an expert needs a person of the directory or a mobile number",
    ]
    with session_scope(url) as s:  # all or nothing: the good team was not written either
        assert counts(s) == {"teams": 0, "equipment": 0, "depots": 0, "experts": 0, "shelters": 0}


def test_yaml_syntax_and_unknown_type(url, tmp_path):
    with session_scope(url) as s, pytest.raises(RegisterImportError) as exc:
        import_register(s, _write(tmp_path, "r.yaml", "teams:\n  - {id: T1, name: [\n"))
    assert exc.value.errors[0].startswith("r.yaml:3: YAML syntax")
    with session_scope(url) as s, pytest.raises(RegisterImportError) as exc:
        import_register(s, _write(tmp_path, "r.txt", "x"))
    assert exc.value.errors == ["r.txt: unknown file type; use .yaml, .yml or .csv"]


CSV = """\
section,id,name,kind,field,strength,equipment,town,duty_phone,leader,depot,item,quantity,unit,minimum,expiry,place,capacity,mobile
team,T-C1,东湖抢险队,flood,,12,排涝泵;冲锋舟,330110002,0571-86900888,qx0664,,,,,,,,,
depot,DEP-C,东湖储备点,,,,,330110002,,,,,,,,,东湖路1号,,
stock,,,,,,,,,,DEP-C,沙袋,500,条,1000,,,,
stock,,,,,,,,,,DEP-C,方便面,20,箱,,2020-01-01,,,
equipment,E-C1,冲锋舟,boat,,,,330110002,,,DEP-C,,2,,,,,,
expert,X-C1,测试专家,,flood,,,,,,,,,,,,,,13710000999
shelter,S-C1,东湖小学,,,,,330110002,,,,,,,,,东湖路9号,120,
"""


def test_csv_imports_and_names_its_lines(url, tmp_path):
    with session_scope(url) as s:
        report = import_register(s, _write(tmp_path, "reg.csv", CSV))
        assert report.counts == {"teams": 1, "depots": 1, "equipment": 1, "experts": 1, "shelters": 1, "stock": 2}
        assert s.get(RescueTeam, "T-C1").equipment == ["排涝泵", "冲锋舟"]
        assert s.get(Equipment, "E-C1").depot_id == "DEP-C"
        assert s.get(Expert, "X-C1").mobile == "+8613710000999"
        assert s.get(Shelter, "S-C1").capacity == 120
        assert {a.item: a.flags for a in stock_alerts(s, date(2026, 12, 5))} == {
            "沙袋": ("below_minimum",), "方便面": ("expired",)}
    bad = CSV.replace("stock,,,,,,,,,,DEP-C,沙袋,500", "stock,,,,,,,,,,DEP-Z,沙袋,500").replace(
        "0571-86900888", "12345").replace("shelter,S-C1", "bunker,S-C1")
    with session_scope(url) as s, pytest.raises(RegisterImportError) as exc:
        import_register(s, _write(tmp_path, "bad.csv", bad))
    assert exc.value.errors == [
        "bad.csv:8: section: 'bunker' is not one of team, equipment, depot, stock, expert, shelter",
        "bad.csv:4: depot: depot 'DEP-Z' is not in this file",
        "bad.csv:2: teams[0].duty_phone: not a valid phone number: '12345'",
    ]


def test_reimport_updates_and_replaces_a_depots_stock(url, tmp_path):
    with session_scope(url) as s:
        load_register(s)
        s.get(RescueTeam, "T-FL-01").status = "busy"  # a dispatch's mark: an import that does not name it keeps it
    text = DEMO.read_text(encoding="utf-8").replace("strength: 40", "strength: 45").replace(
        "      - {item: 手电筒, quantity: 60, unit: 只, minimum: 40}\n", "")
    with session_scope(url) as s:
        report = import_register(s, _write(tmp_path, "r.yaml", text))
        assert report.changed["teams"] == 1 and report.changed["stock"] == 1
        team = s.get(RescueTeam, "T-FL-01")
        assert (team.strength, team.status) == (45, "busy")
        assert [x.item for x in s.exec(select(StockLine).where(StockLine.depot_id == "DEP-02"))] == ["编织袋(沙袋)", "救生衣"]


def big_register(n: int = 2000) -> str:
    """`n` records over the five sections and the demo's towns (bench/resources_import.py uses it too)."""
    towns = [f"330110{t:03d}" for t in range(1, 11)]
    lines = ["teams:"]
    share = n // 5
    for i in range(share):
        lines.append(f"  - {{id: BT{i:05d}, name: 队伍{i}, kind: flood, strength: {10 + i % 30}, town: '{towns[i % 10]}', "
                     f"duty_phone: '0571-8{i % 10}{i:06d}', equipment: [排涝泵, 冲锋舟]}}")
    lines.append("equipment:")
    for i in range(share):
        lines.append(f"  - {{id: BE{i:05d}, name: 装备{i}, kind: pump, quantity: 2, team: BT{i:05d}, town: '{towns[i % 10]}'}}")
    lines.append("depots:")
    for i in range(share):
        lines.append(f"  - {{id: BD{i:05d}, name: 储备点{i}, town: '{towns[i % 10]}', stock: "
                     f"[{{item: 沙袋, quantity: {i}, unit: 条, minimum: 100}}, {{item: 救生衣, quantity: 50, unit: 件}}]}}")
    lines.append("experts:")
    for i in range(share):
        lines.append(f"  - {{id: BX{i:05d}, name: 专家{i}, field: flood, mobile: '137{i:08d}'}}")
    lines.append("shelters:")
    for i in range(n - 4 * share):
        lines.append(f"  - {{id: BS{i:05d}, name: 安置点{i}, place: 某路{i}号, capacity: {100 + i}, town: '{towns[i % 10]}'}}")
    return "\n".join(lines) + "\n"


def test_a_register_of_2000_records_imports(url, tmp_path):
    f = _write(tmp_path, "big.yaml", big_register(2000))
    with session_scope(url) as s:
        report = import_register(s, f)
    assert report.total == 2000 and report.counts["stock"] == 800
    with session_scope(url) as s:
        assert sum(counts(s).values()) == 2000
        assert len(stock_alerts(s, DAY0)) == 100  # quantities 0..99 below the minimum of 100
        again = import_register(s, f)
        assert not any(again.changed.values())
        assert s.get(SupplyDepot, "BD00399").town_id == "330110010"


def test_cli_imports_or_lists_every_problem(db_url, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    with session_scope() as s:
        load_demo_if_empty(s, today=DAY0)
    runner = CliRunner()
    bad = _write(tmp_path, "bad.yaml", BAD.replace("strength: -3", "strength: 3"))
    result = runner.invoke(app, ["resources", "import", str(bad)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "bad.yaml:15: shelters[0].town: unknown town '999'" in result.output
    assert "8 problem(s) in bad.yaml; nothing was imported" in result.output
    result = runner.invoke(app, ["resources", "import", str(DEMO)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "teams" in result.output and "10" in result.output
    result = runner.invoke(app, ["resources", "alerts"], catch_exceptions=False)
    assert result.exit_code == 0 and "方便食品" in result.output and "expired" in result.output
