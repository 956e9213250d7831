"""A plan activation's figures for the event report (from the fold that its replay uses: store/replay/activation.py)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from store.replay import EventLike, fold_activation
from store.review.common import Sends, _iso, rate

ITEM_STATES = ("on_time", "late", "overdue", "reported", "closed", "open")  # a task's or directive's, at the end


def _item_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Tasks or directives against their time limits: done on time, done late, overdue (not done past the limit,
    also when closed so), reported and awaiting acceptance, closed before the limit without being done, open."""
    out = []
    for it in sorted(rows, key=lambda r: (r["opened_at"], r["id"])):
        out.append({"id": it["id"], "label": it["label"], "unit": it["unit"] or it["group"], "assignee": it["assignee"],
                    "opened_at": _iso(it["opened_at"]), "due_at": _iso(it["due_at"]),
                    "first_due_at": _iso(it["first_due_at"]), "acknowledged_at": _iso(it["acknowledged_at"]),
                    "done_at": _iso(it["done_at"]), "closed_at": _iso(it["closed_at"]), "state": it["state"],
                    "late_by_s": it["late_by_s"], "late_by_min": -(-it["late_by_s"] // 60) if it["late_by_s"] else None,
                    "returns": it["returns"], "reminders": it["reminders"], "escalations": it["escalations"]})
    count = {s: sum(r["state"] == s for r in out) for s in ITEM_STATES}
    done = count["on_time"] + count["late"]
    return {"total": len(out), **count, "completed": done, "completion_rate": rate(done, len(out)),
            "on_time_rate": rate(count["on_time"], len(out)), "escalations": sum(r["escalations"] for r in out),
            "items": out}


def resources_used(events: list[EventLike]) -> dict[str, Any]:
    """应急资源: the register teams dispatched (marked busy; a returned plan's and a redraft's counted once per team,
    with when they were released) and the supplies moved (物资调拨: received quantities), from the events alone."""
    teams: dict[str, dict[str, Any]] = {}
    supplies: dict[int, dict[str, Any]] = {}
    for ev in events:
        k, p = ev.kind, ev.payload or {}
        if k == "activation.dispatch.team_busy":
            t = teams.setdefault(p.get("team"), {"team": p.get("team"), "name": p.get("name"), "kind": p.get("kind"),
                                                 "strength": p.get("strength"), "busy_at": _iso(ev.at)})
            t["released_at"] = None
        elif k == "activation.dispatch.team_released" and p.get("team") in teams:
            teams[p["team"]]["released_at"] = _iso(ev.at)
        elif k.startswith("activation.supplies."):
            r = supplies.setdefault(int(p.get("seq") or 0), {"seq": p.get("seq"), "depot": p.get("depot_name") or
                                                             p.get("depot_id"), "state": None, "items": [],
                                                             "shortage": []})
            r["state"] = k.rsplit(".", 1)[1] if k != "activation.supplies.shortage" else r["state"]
            if k == "activation.supplies.requested":
                r["items"] = [{"item": x.get("item"), "unit": x.get("unit"), "requested": x.get("requested"),
                               "received": None} for x in p.get("items") or []]
            elif k == "activation.supplies.shortage":
                r["shortage"] = [{"item": x.get("item"), "unit": x.get("unit"), "shortage": x.get("shortage")}
                                 for x in p.get("shortage") or []]
            elif k == "activation.supplies.received":
                got = {x.get("item"): x.get("received") for x in p.get("items") or []}
                for x in r["items"]:
                    x["received"] = got.get(x["item"])
    return {"teams": list(teams.values()), "strength": sum(t["strength"] or 0 for t in teams.values()),
            "supplies": [supplies[k] for k in sorted(supplies)]}


def meetings_held(events: list[EventLike]) -> list[dict[str, Any]]:
    """会商研判: each meeting convened (fields, time, place), the experts who confirmed (`activation.experts.ack`)
    and its conclusions, from the events alone."""
    out: dict[int, dict[str, Any]] = {}
    by_person: dict[str, tuple[int, str]] = {}
    for ev in events:
        k, p = ev.kind, ev.payload or {}
        if k == "activation.meeting.convened":
            m = out.setdefault(int(p.get("seq") or 0), {"seq": p.get("seq"), "fields": p.get("fields") or [],
                                                        "at": p.get("at"), "place": p.get("place"),
                                                        "topic": p.get("topic") or "", "invited": [],
                                                        "confirmed": [], "conclusions": []})
            m["invited"] = [x.get("name") for x in p.get("experts") or []]
            for x in p.get("experts") or []:
                by_person[x.get("person_id")] = (int(p.get("seq") or 0), x.get("name"))
        elif k == "activation.experts.ack":
            seq, name = by_person.get(p.get("person_id") or "", (None, None))
            if seq in out and name not in out[seq]["confirmed"]:
                out[seq]["confirmed"].append(name)
        elif k == "activation.meeting.concluded" and int(p.get("seq") or 0) in out:
            out[int(p["seq"])]["conclusions"].append({"text": p.get("text"), "at": _iso(ev.at), "by": ev.actor})
    return [out[k] for k in sorted(out)]


def activation_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    """Levels and their changes with their times, tasks and directives against their time limits, escalations,
    dispatches and reinforcement requests, from the activation's events (store/replay/activation.py
    fold_activation)."""
    end = events[-1].at if events else datetime.max.replace(tzinfo=UTC)
    st = fold_activation(events, end)
    levels = [{"at": _iso(lv["at"]), "from": lv["from"], "to": lv["to"], "direction": lv["direction"], "by": lv["by"],
               "reason": lv["reason"], "until": _iso(lv["until"]), "duration_s": lv["duration_s"]} for lv in st["levels"]]
    rein = st["reinforcements"]
    sends = Sends()
    for ev in events:
        sends.see(ev)
    return {"subject": subject, "plan": st["plan_id"], "plan_name": st["plan_name"], "commander": st["commander"],
            "started_at": _iso(st["started_at"]), "terminated_at": _iso(st["terminated_at"]),
            "terminated_by": st["terminated_by"], "level": st["level"], "levels": levels,
            "level_changes": [lv for lv in levels if lv["from"] is not None],
            "tasks": _item_rows([i for i in st["items"] if i["kind"] == "task"]),
            "directives": _item_rows([i for i in st["items"] if i["kind"] == "directive"]),
            "dispatches": {"total": len(st["dispatches"]),
                           "approved": sum(d["state"] == "approved" for d in st["dispatches"])},
            "reinforcements": {"total": len(rein), **{s: sum(r["state"] == s for r in rein)
                                                     for s in ("on_time", "late", "overdue", "open", "closed")}},
            "escalations": st["escalations"], "channels": sends.per_channel(), "resources": resources_used(events),
            "meetings": meetings_held(events)}

