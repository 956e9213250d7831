"""What a plan activation sends, worded in the plan (definitions/plans/, `messages`): Chinese, each message
a template whose names the activation fills (workflows/activation/). A plan may reword any of them; the
defaults are the district's wording. Checked when the definitions load (`yingji definitions check`): a
template may name only what the activation fills."""
from __future__ import annotations

from string import Formatter
from typing import ClassVar

from pydantic import model_validator

from definitions.schema.common import Strict


class ActivationMessages(Strict):
    """The wording of what an activation sends (Chinese; a plan may reword any of them).

    `{name}` is filled by the workflow from the activation (the names each message may use are listed in
    `FIELDS`); `{due}` (a time limit in local time), `{roles}` (the roles a person is called for) and
    `{label}` (the force an order goes to) are filled by the activity that sends it. Text people wrote
    (a directive, comments, a detail) is filled in as is, never read as a template."""

    FIELDS: ClassVar[dict[str, set[str]]] = {
        "convene": {"title", "plan", "level", "roles"},
        "notice": {"word", "id", "prefix", "title", "text", "due"},
        "overdue": {"word", "id", "title", "due"},
        "remind": {"id", "title", "due"},
        "returned": {"id", "title", "comments", "due"},
        "stood_down": {"title", "plan", "old", "new", "posts"},
        "terminated": {"title", "plan", "level", "reason"},
        "consult": {"season", "forces", "task"},
        "approval": {"forces", "task", "ask"},
        "approval_ask": set(),
        "approval_ask_consult": set(),
        "orders": {"title", "label", "task", "place"},
        "orders_place": {"place"},
        "sector_informed": {"forces", "task"},
        "request": {"district", "plan", "level", "title", "kind", "detail", "quantity", "due"},
        "request_quantity": {"quantity"},
        "chase": {"to", "kind", "detail", "due"},
        "experts": {"title", "plan", "level", "fields", "when", "place", "topic"},
    }
    LATER: ClassVar[tuple[str, ...]] = ("due", "roles", "label")  # filled by the sending activity

    convene: str = "【启动响应】{title}:{plan}启动{level}。您任{roles},请立即到岗履职。"
    notice: str = "【{word}{id}】{prefix}{title}。{text} 时限:{due}。"
    overdue: str = "【督办】{word}{id}「{title}」已超过时限({due})未反馈完成,请立即落实并反馈。"
    remind: str = "【督办提醒】{id}「{title}」须于{due}前反馈完成,请抓紧落实。"
    returned: str = "【退回】{id}「{title}」的完成反馈被退回:{comments} 时限:{due}。"
    stood_down: str = "【响应调整】{title}:{plan}已由{old}调整为{new}响应,您不再担任{posts},感谢履职。"
    terminated: str = "【响应终止】{title}:{plan}{level}响应已终止({reason})。请各工作组、参与单位及时书面总结,报区应急管理局。"
    consult: str = "【力量调度会商】{season}:拟调用{forces}({task})。请行业主管部门会商并反馈意见。"
    approval: str = "【力量调度审批】消防救援队伍拟调用{forces}:{task}。{ask}"
    approval_ask: str = "请审批。"
    approval_ask_consult: str = "须先会商行业主管部门。"
    orders: str = "【出动指令】{title}:{label}立即出动。任务:{task}{place}。"
    orders_place: str = " 地点:{place}"
    sector_informed: str = "【力量调度报备】已下达出动指令:{forces}。任务:{task}。"
    request: str = "【增援请求】{plan}{level}响应({title}):请求增援{kind}——{detail}{quantity}。请于{due}前答复。"
    request_quantity: str = "({quantity})"
    experts: str = ("【会商研判】{title}:{plan}{level}响应,请{fields}专家于{when}到{place}参加会商研判{topic}。"
                    "请确认能否参加。")
    chase: str = "【催办】向{to}请求增援{kind}({detail})已到答复时限({due})仍未答复,请立即电话催办。"

    @model_validator(mode="after")
    def _placeholders(self) -> "ActivationMessages":
        for name, allowed in self.FIELDS.items():
            try:
                fields = [(f, spec, conv) for _, f, spec, conv in Formatter().parse(getattr(self, name)) if f is not None]
            except ValueError as e:
                raise ValueError(f"messages.{name}: {e} (write a literal brace as {{{{ or }}}})") from None
            for f, spec, conv in fields:
                if f not in allowed or spec or conv:
                    raise ValueError(f"messages.{name}: {{{f}}} is not one of its names"
                                     f" ({', '.join('{' + x + '}' for x in sorted(allowed)) or 'none'})")
        return self

    def render(self, name: str, **values: object) -> str:
        """One message, its workflow names filled; `{due}`, `{roles}`, `{label}` stay for the activity."""
        return getattr(self, name).format_map({**{k: "{" + k + "}" for k in self.LATER}, **values})
