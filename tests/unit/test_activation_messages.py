"""What an activation sends is worded in the plan (definitions/schema/plans.py ActivationMessages), not in the
workflow: the defaults give the texts the workflow wrote before, a plan may reword them, and a template naming
something the activation does not fill is refused when the definitions load."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from definitions.schema.activation_messages import ActivationMessages

SAYS = ActivationMessages()


def test_the_workflow_fills_its_names_and_leaves_the_activitys():
    text = SAYS.render("notice", word="指令", id="D1", prefix="数据排查组:", title="排查", text="排查密接")
    assert text == "【指令D1】数据排查组:排查。排查密接 时限:{due}。"  # {due}: the activity, in local time
    assert SAYS.render("convene", title="东山村疫情", plan="公共卫生应急预案", level="Ⅳ级响应(一般)") == (
        "【启动响应】东山村疫情:公共卫生应急预案启动Ⅳ级响应(一般)。您任{roles},请立即到岗履职。")
    quantity = SAYS.render("request_quantity", quantity="2名")
    # {plan}: the plan as the city knows it, the directory's district leading (workflows/activation/reinforcement.py)
    assert SAYS.render("request", district="青溪区", plan="青溪区防汛应急预案", level="Ⅳ级", title="青溪河超警", kind="专家",
                       detail="地质灾害专家", quantity=quantity) == (
        "【增援请求】青溪区防汛应急预案Ⅳ级响应(青溪河超警):请求增援专家——地质灾害专家(2名)。请于{due}前答复。")
    place = SAYS.render("orders_place", place="东山村")
    assert SAYS.render("orders", title="山体滑坡", task="搜救", place=place) == "【出动指令】山体滑坡:{label}立即出动。任务:搜救 地点:东山村。"


def test_what_people_wrote_is_never_read_as_a_template():
    assert SAYS.render("returned", id="D1", title="{title}", comments="缺{名单}") == (
        "【退回】D1「{title}」的完成反馈被退回:缺{名单} 时限:{due}。")


def test_a_plan_rewords_a_message():
    says = ActivationMessages(remind="【提醒】请于{due}前反馈{title}({id})。")
    assert says.render("remind", id="D2", title="转运") == "【提醒】请于{due}前反馈转运(D2)。"


@pytest.mark.parametrize("template, error", [
    ("【督办】{assignee}请落实", "{assignee} is not one of its names"),
    ("【督办】{title!r}", "{title} is not one of its names"),
    ("【督办】{title:>10}", "{title} is not one of its names"),
    ("【督办】{title", "expected '}'"),
])
def test_a_template_naming_what_is_not_filled_is_refused(template, error):
    with pytest.raises(ValidationError, match=error.replace("{", r"\{").replace("}", r"\}")):
        ActivationMessages(overdue=template)
