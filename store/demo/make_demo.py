"""Generate the fictional demo district 青溪区 (store/demo/district.yaml). Deterministic.

    .venv/bin/python store/demo/make_demo.py      # rewrites store/demo/district.yaml

Every name and number is made up. The positions are the built-in ones (store.directory_import.POSITIONS).
Person ids: qx0001 secretary, qx0002 head, qx0003-qx0006 deputy district heads; qx0100-qx0123 department
heads and deputies; qx0200-qx0210 the duty office; qx0300-qx0539 towns and villages; qx0600- other staff.
"""
from __future__ import annotations

import io
import random

import yaml

from store.directory_import import DEMO, POSITIONS

rng = random.Random(20260701)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌海波宁晨宇浩然欣怡子涵思远嘉琪俊峰晓东立新春燕秋菊冬梅德胜永福"
DEPARTMENTS = [("D01", "区应急管理局", False), ("D02", "区水利局", False), ("D03", "区自然资源和规划分局", True),
               ("D04", "区气象局", True), ("D05", "区农业农村局(林业局)", False), ("D06", "区住房和城乡建设局", False),
               ("D07", "区交通运输局", False), ("D08", "区公安分局", True), ("D09", "区消防救援大队", True),
               ("D10", "区卫生健康局", False), ("D11", "区教育局", False), ("D12", "区综合行政执法局", False)]
TOWNS = ["青溪街道", "东湖街道", "南岭街道", "西山镇", "北塘镇", "石门镇", "云栖镇", "白沙镇", "枫桥镇", "龙潭镇"]
VILLAGE_WORDS = "东西南北上下前后新老大小长高金银石竹松柏桃李杏梅荷枫柳桂兰"
VILLAGE_ENDS = ["村", "村", "村", "社区"]

persons: list[dict] = []
used_names: set[str] = set()
mobile_seq = iter(range(10_000_000))


def name() -> str:
    while True:
        n = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        if n not in used_names:
            used_names.add(n)
            return n


def person(pid: str, unit: str) -> str:
    seq = next(mobile_seq)
    persons.append({"id": pid, "name": name(), "mobile": f"139{(seq * 7919 + 1234567) % 100_000_000:08d}",
                    "im_id": pid, "org_unit": unit, "contact_confirmed": f"2026-0{rng.randint(1, 4)}-{rng.randint(10, 28)}"})
    return pid


def main() -> None:
    units = [{"id": "330110", "name": "青溪区", "kind": "district"}]
    posts: list[dict] = []
    sec, head = person("qx0001", "330110"), person("qx0002", "330110")
    deputies = [person(f"qx000{i}", "330110") for i in range(3, 7)]
    posts += [{"position": "district_party_secretary", "org_unit": "330110", "person": sec},
              {"position": "district_head", "org_unit": "330110", "person": head, "superior": sec}]
    posts += [{"position": "deputy_district_head", "org_unit": "330110", "person": d, "superior": head} for d in deputies]
    n = 100
    for i, (did, dname, vertical) in enumerate(DEPARTMENTS):
        units.append({"id": did, "name": dname, "kind": "department", "parent": "330110", "vertical_line": vertical,
                      "duty_phone": f"0571-8690{i + 1:04d}"})  # 24小时值班电话 (made up)
        h = person(f"qx{n:04d}", did)
        dep = person(f"qx{n + 1:04d}", did) if did not in ("D07", "D11") else None  # two without a deputy
        n += 2
        posts.append({"position": "dept_head", "org_unit": did, "person": h, "deputy": dep,
                      "superior": deputies[i % len(deputies)]})
    units.append({"id": "D13", "name": "区政府总值班室", "kind": "department", "parent": "330110",
                  "duty_phone": "0571-86900000"})
    office_head = person("qx0200", "D13")
    posts.append({"position": "duty_office_head", "org_unit": "D13", "person": office_head, "superior": deputies[0]})
    chiefs = [person(f"qx02{i:02d}", "D13") for i in range(1, 3)]
    cadres = [person(f"qx02{i:02d}", "D13") for i in range(3, 7)]
    staff = [person(f"qx02{i:02d}", "D01") for i in range(7, 11)]
    n = 300
    for t, tname in enumerate(TOWNS, start=1):
        tid = f"330110{t:03d}"
        units.append({"id": tid, "name": tname, "kind": "town", "parent": "330110",
                      "duty_phone": f"0571-8691{t:04d}"})
        tsec, thead = person(f"qx{n:04d}", tid), person(f"qx{n + 1:04d}", tid)
        tdep = person(f"qx{n + 2:04d}", tid) if t not in (4, 9) else None  # two town heads without a deputy
        flood = person(f"qx{n + 3:04d}", tid)
        n += 4
        leader = deputies[(t - 1) % len(deputies)]  # the deputy district head in charge of this town
        posts += [{"position": "town_party_secretary", "org_unit": tid, "person": tsec, "superior": leader},
                  {"position": "town_head", "org_unit": tid, "person": thead, "deputy": tdep, "superior": leader},
                  {"position": "town_flood_officer", "org_unit": tid, "person": flood, "deputy": tdep, "superior": thead}]
        words = rng.sample(VILLAGE_WORDS, 10)
        for v in range(1, 11):
            vid = f"{tid}{v:03d}"
            units.append({"id": vid, "name": f"{tname[:2]}{words[v - 1]}{rng.choice('山溪塘桥湾坪岭')}{rng.choice(VILLAGE_ENDS)}",
                          "kind": "village", "parent": tid})
            resp, vhead = person(f"qx{n:04d}", vid), person(f"qx{n + 1:04d}", vid)
            n += 2
            no_deputy = (t, v) in {(1, 3), (2, 7), (5, 5), (8, 2), (10, 10)}  # five without a deputy
            posts += [{"position": "village_flood_resp", "org_unit": vid, "person": resp,
                       "deputy": None if no_deputy else vhead, "superior": thead},
                      {"position": "village_head", "org_unit": vid, "person": vhead, "superior": thead}]
    n = 600  # the rest of the staff: in the directory, holding no post the plans name
    for did, _, _ in DEPARTMENTS:
        for _ in range(5):
            person(f"qx{n:04d}", did)
            n += 1
    for t in range(1, 11):
        for _ in range(4):
            person(f"qx{n:04d}", f"330110{t:03d}")
            n += 1
    n = 900  # 网格员: a grid worker in each village of the first three towns (到户到人: they answer 到户 for it)
    for t in range(1, 4):
        tid = f"330110{t:03d}"
        thead = next(p["person"] for p in posts if p["position"] == "town_head" and p["org_unit"] == tid)
        for v in range(1, 11):
            vid = f"{tid}{v:03d}"
            posts.append({"position": "grid_worker", "org_unit": vid, "person": person(f"qx{n:04d}", vid),
                          "superior": thead})
            n += 1
    for p in posts:
        for k in ("deputy", "superior"):
            if p.get(k) is None:
                p.pop(k, None)
    doc = {"org_units": units,
           "positions": [p.model_dump() for p in POSITIONS],
           "persons": persons, "posts": posts,
           "roster": {"shift_start": "08:30", "days": 7,
                      "rotation": {"leading_leader": deputies, "duty_chief": chiefs,
                                   "duty_cadre": [cadres[0:2], cadres[2:4]], "duty_staff": [staff[0:2], staff[2:4]]}}}
    out = io.StringIO()
    out.write("# The fictional demo district 青溪区: generated by store/demo/make_demo.py; every name and\n"
              "# number is made up. Loaded by `make run` when the database is empty.\n")
    yaml.safe_dump(doc, out, allow_unicode=True, sort_keys=False, width=120)
    DEMO.write_text(out.getvalue(), encoding="utf-8")
    print(f"{DEMO}: {len(units)} org units, {len(persons)} persons, {len(posts)} posts")


if __name__ == "__main__":
    main()
