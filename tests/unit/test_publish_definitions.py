"""The call-out plans' `publish:` sections (issue 20, 精准发布 below orange): every shipped plan publishes yellow to
more persons than blue, never by voice; a mistake in a section is an error of `yingji definitions check` naming
the file, the line and the path."""
from __future__ import annotations

import shutil
from pathlib import Path

from definitions.loader import load_library, load_or_raise
from definitions.schema.common import Level

ROOT = Path(__file__).resolve().parents[2] / "definitions"


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "definitions"
    shutil.copytree(ROOT, copy)
    return copy


def _errors(copy: Path) -> list[str]:
    return [str(e) for e in load_library(copy).errors]


def test_every_shipped_plan_publishes_yellow_wider_than_blue_and_never_by_voice():
    lib = load_or_raise(ROOT)
    for loaded in lib.of("callout").values():
        plan = loaded.model
        yellow, blue = plan.publish_for(Level.yellow), plan.publish_for(Level.blue)
        assert yellow and blue, plan.id
        assert plan.publish_for(Level.orange) is None and plan.publish_for(None) is None
        assert "voice" not in {c.value for c in [*yellow.channels, *blue.channels]}, plan.id
        reach = lambda lv: {(t.scope, p, u) for t in lv.tiers for p in t.positions for u in (t.org_units or [""])}  # noqa: E731
        assert reach(blue) < reach(yellow), plan.id  # blue informs fewer, all of whom yellow informs too
        assert any(t.scope == "area_villages" for t in yellow.tiers), plan.id  # 到村: the grassroots persons
        assert "{headline}" in plan.publish.message_zh and "{level}" in plan.publish.message_zh


def test_an_unknown_position_names_file_line_and_path(tmp_path):
    copy = _copy(tmp_path)
    f = copy / "callout" / "forest_fire.yaml"
    text = f.read_text()
    f.write_text(text.replace("scope: area_villages, positions: [village_head]}",
                              "scope: area_villages, positions: [nobody]}"))
    line = next(n for n, ln in enumerate(f.read_text().splitlines(), 1) if "[nobody]" in ln)
    errors = _errors(copy)
    assert errors == [f"{f}:{line}: publish.yellow.tiers[2].positions[0]: unknown position 'nobody'"], errors


def test_a_section_at_the_call_out_level_or_a_bad_template_is_refused(tmp_path):
    copy = _copy(tmp_path)
    f = copy / "callout" / "typhoon.yaml"
    f.write_text(f.read_text().replace("min_level: orange", "min_level: yellow", 1))
    g = copy / "callout" / "heavy_rain.yaml"
    g.write_text(g.read_text().replace("  cancel_message_zh: \"【预警解除】", "  cancel_message_zh: \"{code}【预警解除】", 1))
    errors = _errors(copy)
    assert any("typhoon.yaml" in e and "publish.yellow: yellow is at or above the plan's min_level" in e for e in errors), errors
    assert any("heavy_rain.yaml:" in e and "cancel_message_zh" in e and "placeholder" in e for e in errors), errors
