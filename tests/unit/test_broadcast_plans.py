"""应急广播 in the call-out plans: which plans broadcast at which levels, templates checked when loaded, the text."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from definitions.loader import load_or_raise
from definitions.schema.callout import Broadcast
from definitions.schema.common import Level
from workflows.kit.broadcast import render

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


def test_shipped_plans_broadcast_orange_and_red():
    plans = {k: v.model for k, v in load_or_raise(DEFINITIONS).of("callout").items()}
    broadcasting = {k for k, p in plans.items() if p.broadcast}
    assert broadcasting == {"heavy_rain", "flash_flood_geohazard", "typhoon", "thunderstorm_gale"}
    for k in broadcasting:
        b = plans[k].broadcast
        assert not b.covers(Level.yellow) and not b.covers(Level.blue), k
        assert b.covers(Level.orange) and b.covers(Level.red), k
        assert b.repeat >= 2 and len(b.text_zh) <= 120, k  # short: loudspeakers
        assert not any(c.isascii() and c.isalpha() for c in b.text_zh.replace("{level}", "").replace("{event}", "")
                       .replace("{area}", "").replace("{headline}", "")), f"{k}: Chinese only"


def test_templates_are_checked():
    with pytest.raises(ValidationError, match=r"\{town\} is not a field"):
        Broadcast(levels=[Level.red], text_zh="{town}请注意")
    with pytest.raises(ValidationError, match="levels"):
        Broadcast(levels=[], text_zh="请注意")


def test_render_marks_a_drill():
    b = Broadcast(levels=[Level.orange], text_zh="各位居民请注意:{area}发布{event}{level}预警。")
    fill = dict(level_zh="橙色", event="暴雨", headline="", area="第1街道")
    assert render(b.text_zh, drill=False, **fill) == "各位居民请注意:第1街道发布暴雨橙色预警。"
    assert render(b.text_zh, drill=True, **fill).startswith("【演练】各位居民请注意")
