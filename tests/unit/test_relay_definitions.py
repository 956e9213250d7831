"""到户到人: the relay reply as people write it, and the plan's relay section (definitions/schema/callout.py)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from api.services.answers import parse_relay, parse_reply
from definitions.loader import load_or_raise
from definitions.schema.callout import CalloutPlan
from definitions.schema.common import Level

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


@pytest.mark.parametrize("body, households, code", [
    ("到户 35", 35, None), ("到户35", 35, None), ("已到户 35户", 35, None), ("已到户35户。", 35, None),
    (" 到户：３５户 ", 35, None), ("到户 1234", 1234, None),  # the number after 到户 is the households, not a code
    ("到户 35 4321", 35, "4321"), ("到户35户,4321", 35, "4321"), ("已通知到户 0", 0, None),
    ("到户", None, None), ("收到", None, None), ("1", None, None), ("到户 许多", None, None), ("到户 35 人", None, None),
])
def test_parse_relay(body, households, code):
    assert parse_relay(body) == (households, code)


def test_a_relay_reply_is_not_read_as_a_plain_acknowledgement_code():
    assert parse_reply("到户 1234") == (False, "1234")  # (sms.py reads the relay first)
    assert parse_relay("到户 1234")[0] == 1234


def test_shipped_plans_relay_the_villages_by_level():
    lib = load_or_raise(DEFINITIONS)
    for plan_id in ("heavy_rain", "flash_flood_geohazard"):
        plan = lib.of("callout")[plan_id].model
        assert plan.relay is not None and plan.relay.tier == "villages"
        assert plan.relay.deadline_for(Level.orange) == timedelta(minutes=60)
        assert plan.relay.deadline_for(Level.red) == timedelta(minutes=30)
        steps = plan.relay.policy(Level.red).steps
        assert steps[0].notify and steps[1].wait_ack == timedelta(minutes=30) and steps[2].escalate == "superior"
        assert "到户" in plan.relay.request_zh and not any(c.isascii() and c.isalpha() for c in plan.relay.request_zh
                                                          .replace("{village}", ""))
    assert lib.of("callout")["thunderstorm_gale"].model.relay is None


def _plan(relay: dict) -> dict:
    raw = yaml.safe_load((DEFINITIONS / "callout" / "heavy_rain.yaml").read_text(encoding="utf-8"))
    raw["relay"] = {**raw["relay"], **relay}
    return raw


def test_a_relay_names_a_tier_of_the_plan_and_leaves_time_to_answer():
    with pytest.raises(ValidationError, match="relay names tier 'hamlets'"):
        CalloutPlan.model_validate(_plan({"tier": "hamlets"}))
    with pytest.raises(ValidationError, match="never followed by a wait_ack"):
        CalloutPlan.model_validate(_plan({"escalation": [{"escalate": "superior"}]}))
    plan = CalloutPlan.model_validate(_plan({"deadline": {"red": "20m"}}))
    assert plan.relay.deadline_for(Level.orange) == timedelta(minutes=20)  # no lower level listed: the lowest given
