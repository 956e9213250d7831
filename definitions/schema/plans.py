"""Response plans 应急预案 with graded response 分级响应 (seeds 001, 003 篇三/篇四, 004).

A plan says, for each response level I 特别重大 … IV 一般: who commands (seed 001:
"按照事件响应等级,分别由部门负责人、区政府分管领导、区政府主要领导进驻指挥部指挥"),
the deputy commanders and the HQ members, which working groups start (lead and members
by position), which standing tasks open with which time limit (seed 003 篇三: trajectories
within 4 h, close contacts moved within 8 h, cross-region checks answered within 24 h),
the start condition, and who may activate and terminate at that level.

Posts are written `position@org_unit`: `dept_head@D09` is the head of department D09 in
the directory, `town_head@incident_town` the head of the town where the incident is,
`district_head` (no unit) the district-level holder of the position.

Force dispatch 力量调度 (seed 003 篇四 §三(一)2): fire rescue drafts the plan, emergency
management approves it; in special periods (汛期, 森林防火期: dates are data here) only
after consulting the sector department 行业主管部门; orders go to the forces with
acknowledgement and the sector department is informed (报备). Beyond local capacity the
plan names where reinforcement requests go (the city) and how soon an answer is due.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from definitions.schema.activation_messages import ActivationMessages
from definitions.schema.common import Channel, Duration, Level, Strict
from definitions.schema.escalation import Policy
from definitions.schema.reporting import CATEGORIES, Severity
from definitions.schema.resources import TEAM_KINDS

ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander")
INCIDENT_TOWN = "incident_town"
LEVEL_ZH = {"I": "Ⅰ级", "II": "Ⅱ级", "III": "Ⅲ级", "IV": "Ⅳ级"}
_POST = re.compile(r"^([a-z][a-z0-9_]*)(?:@([A-Za-z0-9_]+))?$")
_ID = r"^[a-z][a-z0-9_]*$"
_MMDD = re.compile(r"^(\d{2})-(\d{2})$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

Role = Literal["duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander"]


class PostRef(Strict):
    """A post: a position in an org unit (None: the district-level holder; incident_town: the incident's town)."""

    position: str = Field(pattern=_ID)
    org_unit: str | None = None

    @property
    def key(self) -> str:
        return f"{self.position}@{self.org_unit}" if self.org_unit else self.position


def _post(value: object) -> object:
    if isinstance(value, str):
        m = _POST.match(value.strip())
        if not m:
            raise ValueError(f"{value!r} is not a post: write position or position@org_unit, e.g. dept_head@D09")
        return {"position": m.group(1), "org_unit": m.group(2)}
    return value


Post = Annotated[PostRef, BeforeValidator(_post)]


def _e164(v: str | None) -> str | None:
    if v is not None and not _E164.match(v):
        raise ValueError(f"{v!r} is not an E.164 number (like +8657188000001)")
    return v


class Group(Strict):
    """A working group 工作组: its lead is called out at activation and answers for its tasks."""

    id: str = Field(pattern=_ID)
    name_zh: str
    name_en: str = ""
    duties_zh: str = Field(default="", description="主要职责")
    lead: Post
    members: list[Post] = Field(default_factory=list)


class Task(Strict):
    """A standing task 规定任务: opened when its level starts, due a time after that, owned by a group."""

    id: str = Field(pattern=_ID)
    name_zh: str
    name_en: str = ""
    text_zh: str = Field(description="what the group lead is told to do")
    group: str
    due: Duration = Field(description="after the task opens (activation, or the level change that opened it)")
    feedback: bool = Field(default=True, description="a 'done' feedback accepted by the commander closes it; "
                                                     "false: the lead's acknowledgement is enough")


class LevelTask(Strict):
    id: str
    due: Duration | None = Field(default=None, description="this level's time limit; default: the task's")


class ResponseLevel(Strict):
    name_zh: str = ""
    start_condition_zh: str = Field(description="启动条件")
    commander: Post = Field(description="指挥长")
    deputies: list[Post] = Field(default_factory=list, description="副指挥长")
    hq: list[Post] = Field(default_factory=list, description="指挥部成员 convened with acknowledgement")
    groups: list[str] = Field(default_factory=list)
    tasks: list[LevelTask] = Field(default_factory=list)
    activate: list[Role] = Field(min_length=1, description="roles that may activate at, or raise the response to, this level")
    terminate: list[Role] = Field(min_length=1, description="roles that may terminate a response at this level")


class Season(Strict):
    """A special period 特殊时期 by local month-day, inclusive; it may wrap the new year (11-01 … 04-30)."""

    id: str = Field(pattern=_ID)
    name_zh: str
    start: str = Field(description="MM-DD")
    end: str = Field(description="MM-DD, inclusive")

    @field_validator("start", "end")
    @classmethod
    def _mmdd(cls, v: str) -> str:
        m = _MMDD.match(v)
        if not m or not (1 <= int(m.group(1)) <= 12) or not (1 <= int(m.group(2)) <= _DAYS[int(m.group(1)) - 1]):
            raise ValueError(f"{v!r} is not a month-day: write MM-DD, e.g. 04-15")
        return v

    def contains(self, month: int, day: int) -> bool:
        md, a, b = (month, day), tuple(map(int, self.start.split("-"))), tuple(map(int, self.end.split("-")))
        return a <= md <= b if a <= b else (md >= a or md <= b)

    def label(self) -> str:
        return f"{self.name_zh}({self.start}至{self.end})"


class Force(Strict):
    """A force that a dispatch may order out: a post in the directory, or a team with its own number."""

    id: str = Field(pattern=_ID)
    name_zh: str
    post: Post | None = None
    mobile: str | None = None
    contact_zh: str = Field(default="", description="who answers at that number")

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, v: str | None) -> str | None:
        return _e164(v)

    @model_validator(mode="after")
    def _one(self) -> "Force":
        if (self.post is None) == (self.mobile is None):
            raise ValueError("a force has either a post or a mobile number, not both and not neither")
        return self


class Dispatch(Strict):
    drafter: Post = Field(description="drafts the dispatch plan: fire rescue 消防救援队伍")
    approver: Post = Field(description="approves it: emergency management 应急管理部门")
    sector: Post = Field(description="the sector department 行业主管部门: consulted in special periods, informed always")
    consult_in: list[Season] = Field(default_factory=list, description="special periods that need the sector's consent")
    forces: list[Force] = Field(min_length=1)
    order_policy: str
    team_kinds: list[str] = Field(default_factory=list, description=(
        "the kinds of rescue team (definitions/schema/resources.py TEAM_KINDS) the dispatch proposes from the "
        "resource register, available ones first by the incident's town; a draft may name register teams too"))

    @field_validator("team_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        unknown = [k for k in v if k not in TEAM_KINDS]
        if unknown:
            raise ValueError(f"unknown team kinds {', '.join(unknown)}; kinds: {', '.join(TEAM_KINDS)}")
        return v


class Reinforcement(Strict):
    """Requests beyond local capacity go to the city (experts, teams, supplies) and are tracked to an answer."""

    to_zh: str = Field(description="e.g. 市应急管理局指挥中心")
    mobile: str
    answer_within: Duration
    request_policy: str = Field(description="the city confirms receipt of the request")
    chase_policy: str = Field(description="no answer in time: the duty chief is called to chase it")

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, v: str) -> str:
        return _e164(v) or v


class Directives(Strict):
    """督办: directives and standing tasks are acknowledged, reminded, fed back, accepted or returned, escalated when overdue."""

    ack_policy: str
    overdue_policy: str
    remind_before: Duration
    unit_heads: list[str] = Field(default_factory=lambda: ["dept_head", "town_head", "village_head"],
                                  description="a directive to an org unit goes to the first of these posts it has")


class ActionRoles(Strict):
    direct: list[Role] = Field(default_factory=lambda: ["commander", "leading_leader"],
                               description="issue directives, accept or return feedback")
    change_level: list[Role] = Field(default_factory=lambda: ["commander", "leading_leader"])
    reinforce: list[Role] = Field(default_factory=lambda: ["commander", "leading_leader", "duty_chief"])
    record_answer: list[Role] = Field(default_factory=lambda: ["duty_cadre", "duty_chief", "leading_leader", "commander"])
    proxy: list[Role] = Field(default_factory=lambda: ["duty_cadre", "duty_chief", "leading_leader"],
                              description="act for an assignee who confirmed by phone (recorded as such)")


class WarningStart(Strict):
    """A start condition that is a warning (预警和响应一体化): a warning of these events at this level or higher
    proposes the response level to the leading leader (workflows/proposal.py). Each keyword is matched as the
    call-out's plan choice matches a warning (definitions/loader.py): the rule applies to a warning whose
    call-out plan is the plan the keyword selects."""

    events: list[str] = Field(min_length=1, description="warning keywords, e.g. 暴雨: each must select a call-out plan")
    level: Level = Field(description="the lowest warning level that meets the condition (orange: orange and red)")
    response_level: Severity = Field(description="the response level proposed")


def _default_proposal_policy() -> Policy:
    return Policy.model_validate({"steps": [
        {"notify": ["sms", "im"]}, {"wait_ack": "15m"}, {"notify": ["voice"]}, {"wait_ack": "10m"},
        {"inform": "duty_chief", "channels": ["sms", "voice"]},
        {"escalate": "position:district_head", "channels": ["sms", "voice"]}, {"wait_ack": "30m"}]})


class Proposal(Strict):
    """How a response proposal is chased when the leading leader does not answer: the policy (the interpreter's
    steps; `duty_chief`, `position:district_head`… are reached), and how long it stands at most when its warning
    names no expiry."""

    policy: Policy = Field(default_factory=_default_proposal_policy)
    lapse_after: Duration = Field(default=timedelta(hours=24), description="a proposal left undecided this long is withdrawn")


class ResponsePlan(Strict):
    id: str = Field(pattern=_ID)
    name_zh: str
    name_en: str
    category: str
    events: list[str] = Field(default_factory=list, description="keywords of incidents this plan covers")
    groups: list[Group] = Field(min_length=1)
    tasks: list[Task] = Field(default_factory=list)
    levels: dict[Severity, ResponseLevel]
    policies: dict[str, Policy] = Field(min_length=1)
    commander_policy: str
    member_policy: str = Field(description="deputy commanders, HQ members and group leads")
    directives: Directives
    dispatch: Dispatch
    reinforcement: Reinforcement
    roles: ActionRoles = Field(default_factory=ActionRoles)
    channels: list[Channel] = Field(default_factory=lambda: [Channel.sms], description="for notices without an answer")
    messages: ActivationMessages = Field(default_factory=ActivationMessages, description="what the activation sends")
    on_warnings: list[WarningStart] = Field(default_factory=list, description="warnings that are start conditions: "
                                                                            "each proposes a response level")
    proposal: Proposal = Field(default_factory=Proposal, description="how a proposal is chased")

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError(f"unknown category {v!r}: use {', '.join(CATEGORIES)}")
        return v

    @model_validator(mode="after")
    def _refs(self) -> "ResponsePlan":
        missing = [s.value for s in Severity if s not in self.levels]
        if missing:
            raise ValueError(f"levels needs every response level I–IV; missing {', '.join(missing)}")
        groups = {g.id for g in self.groups}
        if len(groups) != len(self.groups):
            raise ValueError("group ids repeat")
        tasks = {t.id: t for t in self.tasks}
        if len(tasks) != len(self.tasks):
            raise ValueError("task ids repeat")
        for t in self.tasks:
            if t.group not in groups:
                raise ValueError(f"task {t.id!r}: group {t.group!r} is not among groups ({', '.join(sorted(groups))})")
        for lv, level in self.levels.items():
            for g in level.groups:
                if g not in groups:
                    raise ValueError(f"level {lv.value}: group {g!r} is not among groups ({', '.join(sorted(groups))})")
            for lt in level.tasks:
                if lt.id not in tasks:
                    raise ValueError(f"level {lv.value}: task {lt.id!r} is not among tasks")
                if tasks[lt.id].group not in level.groups:
                    raise ValueError(f"level {lv.value}: task {lt.id!r} belongs to group {tasks[lt.id].group!r}, "
                                     "which does not start at this level")
        names = [self.commander_policy, self.member_policy, self.directives.ack_policy, self.directives.overdue_policy,
                 self.dispatch.order_policy, self.reinforcement.request_policy, self.reinforcement.chase_policy]
        for name in names:
            if name not in self.policies:
                raise ValueError(f"policy {name!r} is not among policies ({', '.join(self.policies)})")
        forces = [f.id for f in self.dispatch.forces]
        if len(forces) != len(set(forces)):
            raise ValueError("dispatch force ids repeat")
        return self

    def warning_start_errors(self) -> list[tuple[list, str]]:
        """What is wrong with `on_warnings` (path in the document, reason): a level the leading leader may not
        activate (the proposal goes to them), a keyword named twice at one warning level. The keywords' call-out
        plans are checked by the loader (definitions/loader.py), which knows the call-out plans."""
        out: list[tuple[list, str]] = []
        seen: set[tuple[str, str]] = set()
        for i, rule in enumerate(self.on_warnings):
            lv = self.level(rule.response_level)
            if "leading_leader" not in lv.activate:
                out.append((["on_warnings", i, "response_level"],
                            f"the proposal goes to the leading leader, who may not activate at "
                            f"{LEVEL_ZH[rule.response_level.value]} (activate: {', '.join(lv.activate)})"))
            for j, kw in enumerate(rule.events):
                if (kw.lower(), rule.level.value) in seen:
                    out.append((["on_warnings", i, "events", j], f"{kw!r} at {rule.level.value} is named twice"))
                seen.add((kw.lower(), rule.level.value))
        return out

    def warning_rule(self, callout_plan_of: "Callable[[str], str | None]", callout_plan: str,
                     level: Level) -> WarningStart | None:
        """The rule a warning meets: its call-out plan is the one a rule's keyword selects (`callout_plan_of`, the
        loader's plan choice) and its level is the rule's or higher; of several, the highest response level."""
        met = [r for r in self.on_warnings if level >= r.level and any(callout_plan_of(kw) == callout_plan
                                                                           for kw in r.events)]
        return max(met, key=lambda r: r.response_level.rank, default=None)

    # --------------------------------------------------------------- reading

    def level(self, level: Severity | str) -> ResponseLevel:
        return self.levels[Severity(level)]

    def group(self, gid: str) -> Group:
        return next(g for g in self.groups if g.id == gid)

    def task(self, tid: str) -> Task:
        return next(t for t in self.tasks if t.id == tid)

    def posts(self) -> list[PostRef]:
        """Every post the plan names (each once)."""
        out: dict[str, PostRef] = {}
        for lv in self.levels.values():
            for p in (lv.commander, *lv.deputies, *lv.hq):
                out.setdefault(p.key, p)
        for g in self.groups:
            for p in (g.lead, *g.members):
                out.setdefault(p.key, p)
        d = self.dispatch
        for p in (d.drafter, d.approver, d.sector, *(f.post for f in d.forces if f.post)):
            out.setdefault(p.key, p)
        return list(out.values())

    def positions(self) -> set[str]:
        out = {p.position for p in self.posts()} | set(self.directives.unit_heads)
        for pol in (*self.policies.values(), self.proposal.policy):
            out |= pol.positions()
        return out

    def seasons(self) -> list[Season]:
        return list(self.dispatch.consult_in)


# ------------------------------------------------------------------ checks across the library


def _find(data: object, wanted, path: tuple = ()) -> tuple | None:
    """The path of the first scalar in a YAML document for which `wanted(value)` holds."""
    if isinstance(data, dict):
        for k, v in data.items():
            if (found := _find(v, wanted, (*path, k))) is not None:
                return found
    elif isinstance(data, list):
        for i, v in enumerate(data):
            if (found := _find(v, wanted, (*path, i))) is not None:
                return found
    elif isinstance(data, str) and wanted(data):
        return path
    return None


def cross_check_plans(loaded: dict, known_positions: set[str]) -> list:
    """Unknown positions, and special periods that plans date differently (one calendar for all: the odd one is named)."""
    from collections import Counter
    from pathlib import Path

    from definitions.yamlsource import SourceError, YamlDocument, format_loc

    errors: list = []
    seasons: dict[str, list[tuple[tuple[str, str], str, int, YamlDocument]]] = {}
    for item in loaded.values():
        plan: ResponsePlan = item.model
        doc = YamlDocument.read(Path(item.file))
        for code in sorted(plan.positions() - known_positions):
            path = _find(doc.data, lambda v, c=code: v in (c, f"position:{c}") or v.startswith(f"{c}@")) or ()
            errors.append(SourceError(item.file, doc.line_of(list(path)), format_loc(path), f"unknown position {code!r}"))
        for i, season in enumerate(plan.seasons()):
            seasons.setdefault(season.id, []).append(((season.start, season.end), item.file, i, doc))
    for sid, uses in seasons.items():
        usual = Counter(dates for dates, *_ in uses).most_common(1)[0][0]
        for dates, file, i, doc in uses:
            if dates != usual:
                path = ["dispatch", "consult_in", i]
                errors.append(SourceError(file, doc.line_of(path), format_loc(path),
                                          f"season {sid!r} runs {dates[0]}–{dates[1]} here but {usual[0]}–{usual[1]} "
                                          "in the other plans: one calendar for every plan"))
    return errors
