"""Which call-out plan a warning gets (definitions/loader.py `callout_plan_for`): its CAP eventCode first, then
its event, then its headline (the hazard it ends with), else the default plan; a keyword or code in two plans is
an error of `yingji definitions check` that names the file and line."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from definitions.loader import load_library, load_or_raise

ROOT = Path(__file__).resolve().parents[2] / "definitions"


@pytest.fixture(scope="module")
def lib():
    return load_or_raise(ROOT)


@pytest.mark.parametrize("event, headline, plan", [
    # the event field as mainland CAP feeds (12379) fill it, with the headline they send
    ("暴雨", "青溪区气象台2026年7月1日03时发布暴雨橙色预警信号", "heavy_rain"),
    ("暴雨", "受台风“烟花”外围影响,青溪区气象台发布暴雨红色预警信号", "heavy_rain"),
    ("山洪", "受强降雨影响,青溪区东山镇、西岭镇发生山洪灾害可能性很大,发布山洪灾害红色预警", "flash_flood_geohazard"),
    ("地质灾害", "区自然资源局、区气象局联合发布地质灾害气象风险橙色预警", "flash_flood_geohazard"),
    ("雷雨大风", "青溪区气象台发布雷雨大风橙色预警信号:预计未来6小时内有8级以上雷雨大风", "thunderstorm_gale"),
    ("大风", "青溪区气象台发布大风橙色预警信号", "thunderstorm_gale"),
    ("森林火险", "青溪区气象台、区林业局联合发布森林火险红色预警:森林火险气象等级为五级", "forest_fire"),
    ("台风", "青溪区气象台发布台风橙色预警信号:今年第6号台风“烟花”将于12小时内影响我区", "typhoon"),
    ("大雾", "青溪区气象台发布大雾橙色预警信号", "default"),
    # no event: the headline decides, by the hazard it ends with, not the cause it starts with
    ("", "受强降雨影响,山洪灾害红色预警", "flash_flood_geohazard"),
    ("", "受台风影响,市气象台发布暴雨红色预警", "heavy_rain"),
    # English feeds
    ("Rainstorm", "Rainstorm warning", "heavy_rain"),
    ("Landslide", "Heavy rain may trigger landslides", "flash_flood_geohazard"),
])
def test_the_event_decides_first_then_the_headline(lib, event, headline, plan):
    assert lib.callout_plan_for(event, headline=headline).model.id == plan


def test_every_shipped_plan_is_chosen_by_its_own_event(lib):
    for plan_id, loaded in lib.of("callout").items():
        for kw in loaded.model.events:
            assert lib.callout_plan_for(kw).model.id == plan_id, kw


def test_an_event_code_decides_before_any_keyword(tmp_path):
    copy = _copy(tmp_path)
    f = copy / "callout" / "flash_flood_geohazard.yaml"
    f.write_text(f.read_text().replace("min_level: orange", 'event_codes: ["11B99", "GBT35965:11B98"]\nmin_level: orange', 1))
    lib = load_or_raise(copy)
    # the event says 暴雨, but the feed's code is the flash-flood one
    assert lib.callout_plan_for("暴雨", headline="暴雨红色预警", event_codes={"GBT35965": ["11B99"]}).model.id == \
        "flash_flood_geohazard"
    assert lib.callout_plan_for("暴雨", event_codes={"GBT35965": ["11B98"]}).model.id == "flash_flood_geohazard"
    assert lib.callout_plan_for("暴雨", event_codes={"other": ["11B98"]}).model.id == "heavy_rain"


def test_a_keyword_in_two_plans_is_an_error_naming_file_and_line(tmp_path):
    copy = _copy(tmp_path)
    f = copy / "callout" / "flash_flood_geohazard.yaml"
    f.write_text(f.read_text().replace("events: [山洪,", "events: [暴雨, 山洪,", 1))
    errors = [str(e) for e in load_library(copy).errors]
    assert len(errors) == 1, errors
    assert "flash_flood_geohazard.yaml:6" in errors[0] or "heavy_rain.yaml:6" in errors[0]
    assert "'暴雨' selects plan" in errors[0] and "keep it in one plan" in errors[0]


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "definitions"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    return copy
