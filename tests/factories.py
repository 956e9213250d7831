"""Small directories built in code, for tests that need to know every person."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from store.directory import OrgUnit, Person, Position, Post
from store.roster import DutyShift

_n = 0


def _mobile() -> str:
    global _n
    _n += 1
    return f"+86139{_n:08d}"


def small_district(s: Session, towns: int = 3, villages: int = 2, missing_deputy: tuple[str, ...] = ()) -> dict[str, str]:
    """District 330110 with departments D01, D02, D04 and `towns` towns of `villages` villages.

    Returns a map of handy names -> person ids: "D01.head", "D01.deputy", "330110001.head",
    "330110001.deputy", "330110001.leader" (superior), "330110001001.resp", "duty_chief", "leading_leader".
    """
    people: dict[str, str] = {}

    def person(key: str, name: str, unit: str) -> str:
        pid = f"p-{key}"
        s.add(Person(id=pid, name=name, mobile=_mobile(), org_unit_id=unit, im_id=f"im-{key}"))
        people[key] = pid
        return pid

    for code, zh, en, leader in [("district_party_secretary", "区委书记", "Secretary", True),
                                 ("district_head", "区长", "District head", True),
                                 ("deputy_district_head", "副区长", "Deputy district head", True),
                                 ("dept_head", "部门主要负责人", "Department head", False),
                                 ("town_party_secretary", "乡镇(街道)党委书记", "Town secretary", True),
                                 ("town_head", "乡镇长(街道主任)", "Town head", False),
                                 ("town_flood_officer", "乡镇(街道)防汛办负责人", "Town flood officer", False),
                                 ("village_flood_resp", "村(社区)防汛责任人", "Village flood person", False),
                                 ("village_head", "村(社区)主任", "Village head", False)]:
        s.add(Position(code=code, name_zh=zh, name_en=en, leader=leader))
    s.add(OrgUnit(id="330110", name="青溪区", kind="district", area_code="330110"))
    s.flush()
    sec = person("secretary", "区委书记甲", "330110")
    head = person("district_head", "区长乙", "330110")
    dep = person("deputy_head", "副区长丙", "330110")
    s.add(Post(position_code="district_party_secretary", org_unit_id="330110", person_id=sec))
    s.add(Post(position_code="district_head", org_unit_id="330110", person_id=head))
    s.add(Post(position_code="deputy_district_head", org_unit_id="330110", person_id=dep, superior_id=head))
    for d, name in [("D01", "区应急管理局"), ("D02", "区水利局"), ("D04", "区气象局")]:
        s.add(OrgUnit(id=d, name=name, kind="department", parent_id="330110"))
        s.flush()
        h = person(f"{d}.head", f"{name}局长", d)
        dp = None if f"{d}.deputy" in missing_deputy else person(f"{d}.deputy", f"{name}副局长", d)
        s.add(Post(position_code="dept_head", org_unit_id=d, person_id=h, deputy_id=dp, superior_id=dep))
    for t in range(1, towns + 1):
        tid = f"330110{t:03d}"
        s.add(OrgUnit(id=tid, name=f"第{t}街道", kind="town", parent_id="330110", area_code=tid))
        s.flush()
        tsec = person(f"{tid}.secretary", f"街道{t}书记", tid)
        th = person(f"{tid}.head", f"街道{t}主任", tid)
        tdp = None if f"{tid}.deputy" in missing_deputy else person(f"{tid}.deputy", f"街道{t}副主任", tid)
        fo = person(f"{tid}.flood", f"街道{t}防汛办", tid)
        s.add(Post(position_code="town_party_secretary", org_unit_id=tid, person_id=tsec, superior_id=dep))
        s.add(Post(position_code="town_head", org_unit_id=tid, person_id=th, deputy_id=tdp, superior_id=dep))
        s.add(Post(position_code="town_flood_officer", org_unit_id=tid, person_id=fo, deputy_id=tdp, superior_id=th))
        for v in range(1, villages + 1):
            vid = f"{tid}{v:03d}"
            s.add(OrgUnit(id=vid, name=f"第{t}街道{v}社区", kind="village", parent_id=tid, area_code=vid))
            s.flush()
            resp = person(f"{vid}.resp", f"社区{t}-{v}防汛责任人", vid)
            vh = person(f"{vid}.head", f"社区{t}-{v}主任", vid)
            s.add(Post(position_code="village_flood_resp", org_unit_id=vid, person_id=resp,
                       deputy_id=None if f"{vid}.deputy" in missing_deputy else vh, superior_id=th))
            s.add(Post(position_code="village_head", org_unit_id=vid, person_id=vh, superior_id=th))
    s.add(OrgUnit(id="DUTY", name="区政府总值班室", kind="department", parent_id="330110"))
    s.flush()
    chief = person("duty_chief", "值班长丁", "DUTY")
    cadre = person("duty_cadre", "值班干部戊", "DUTY")
    start = datetime.now(UTC) - timedelta(days=1)
    for role, pid in [("leading_leader", dep), ("duty_chief", chief), ("duty_cadre", cadre)]:
        s.add(DutyShift(starts_at=start, ends_at=start + timedelta(days=30), role=role, person_id=pid))
    people["leading_leader"] = dep
    s.flush()
    return people


# The departments the response plans (definitions/plans/) name, with the ids of the demo district.
RESPONSE_DEPARTMENTS = [("D03", "区自然资源和规划分局"), ("D05", "区农业农村局(林业局)"), ("D06", "区住房和城乡建设局"),
                        ("D07", "区交通运输局"), ("D08", "区公安分局"), ("D09", "区消防救援大队"), ("D10", "区卫生健康局"),
                        ("D11", "区教育局"), ("D12", "区综合行政执法局")]


def response_district(s: Session, towns: int = 2, villages: int = 1) -> dict[str, str]:
    """`small_district` plus every department the response plans name and the duty office D13 with its head.

    Extra keys: "secretary", "district_head", "deputy_head" (the district leaders), "<Dnn>.head" and
    "<Dnn>.deputy" for each department, "D13.head" (区政府总值班室负责人).
    """
    people = small_district(s, towns=towns, villages=villages)
    dep = people["deputy_head"]
    s.add(Position(code="duty_office_head", name_zh="区政府总值班室负责人", name_en="Head of the duty office"))
    for d, name in RESPONSE_DEPARTMENTS:
        s.add(OrgUnit(id=d, name=name, kind="department", parent_id="330110"))
        s.flush()
        h = f"p-{d}.head"
        s.add(Person(id=h, name=f"{name}局长", mobile=_mobile(), org_unit_id=d, im_id=f"im-{d}.head"))
        dp = f"p-{d}.deputy"
        s.add(Person(id=dp, name=f"{name}副局长", mobile=_mobile(), org_unit_id=d, im_id=f"im-{d}.deputy"))
        s.flush()
        s.add(Post(position_code="dept_head", org_unit_id=d, person_id=h, deputy_id=dp, superior_id=dep))
        people[f"{d}.head"], people[f"{d}.deputy"] = h, dp
    s.add(OrgUnit(id="D13", name="区政府总值班室", kind="department", parent_id="330110"))
    s.flush()
    oh = "p-D13.head"
    s.add(Person(id=oh, name="总值班室主任", mobile=_mobile(), org_unit_id="D13", im_id="im-D13.head"))
    s.flush()
    s.add(Post(position_code="duty_office_head", org_unit_id="D13", person_id=oh, deputy_id=people["duty_chief"],
               superior_id=dep))
    people["D13.head"] = oh
    s.flush()
    return people


def running_callout(s: Session, cid: str, started_at: datetime | None = None) -> None:
    """A running heavy-rain call-out's row (its targets' foreign key), flushed."""
    from store.callouts import Callout

    s.add(Callout(id=cid, plan_id="heavy_rain", plan_version="x", level="orange", category="heavy_rain",
                  status="running", title="暴雨橙色预警叫应", started_at=started_at or datetime.now(UTC)))
    s.flush()


def unanalyzed_targets(s: Session, callout_id: str, count: int, shards: int = 1) -> None:
    """PostgreSQL: a call-out with `count` targets (persons p1…p<count>, target keys t/1…, target i in shard
    i % `shards`), on a table PostgreSQL is kept from analyzing (autovacuum off), as a district-wide call-out's targets
    are when its shards load and its answers come, minutes after they were written: for tests that read a plan."""
    from sqlalchemy import text

    s.execute(text("ALTER TABLE callout_target SET (autovacuum_enabled = false)"))
    running_callout(s, callout_id)
    s.execute(text("INSERT INTO callout_target (callout_id, target_key, shard, tier, position_code, org_unit_id, "
                   "person_id, name, state, attempts, ack_late, escalated_to, spec, updated_at) SELECT :cid, "
                   "'t/' || g, g % :shards, 'v', 'x', 'u', 'p' || g, '', 'notified', '[]', false, '[]', '{}', now() "
                   "FROM generate_series(1, :count) g"), {"cid": callout_id, "shards": shards, "count": count})
