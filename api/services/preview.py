"""The preview of a new call-out: whom a warning would call, decided as the intake decides it
(api/services/warnings.py), resolved as the workflow resolves it; run with a database session."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from api.services.warnings import Normalised, plan_for
from store.callouts import Callout, CalloutTarget
from store.warnings import Warning
from definitions.loader import Library
from store.directory import units_for_areas
from store.targets import resolve_recipients, resolve_targets


_MSG_ZH = {"Update": "预警更新", "Cancel": "预警解除"}


def preview(s: Session, lib: Library, w: Normalised, at: datetime) -> dict[str, Any]:
    """Who a warning would call, decided as the intake decides it, resolved as the workflow resolves it."""
    loaded = plan_for(lib, w)
    units = units_for_areas(s, w.geocodes, w.area_descs)
    out: dict[str, Any] = {"warning": w, "plan": loaded.model if loaded else None, "towns": units, "tiers": [],
                           "total": 0, "gaps": [], "starts": False, "why": None}
    if loaded is None:
        out.update(referenced(s, w) if w.msg_type != "Alert" else {})
        out["why"] = ("没有匹配的叫应方案,也没有默认方案", "no call-out plan matches and there is no default plan")
        return out
    plan = loaded.model
    if w.msg_type != "Alert":
        out.update(referenced(s, w))
        out["why"] = (f"{_MSG_ZH.get(w.msg_type, w.msg_type)}将转给它所引用的叫应处理",
                      f"a CAP {w.msg_type} is passed to the running call-out it references ({', '.join(w.references)})")
        return out
    if w.level is None or w.level < plan.min_level:
        out["why"] = (("预警没有级别", "no level") if w.level is None else
                      (f"{w.level.zh}预警低于该方案的起叫级别({plan.min_level.zh})",
                       f"{w.level.value} is below the plan's {plan.min_level.value}"))
        publish = plan.publish_for(w.level)
        if publish is not None:  # issue 20: published once to the persons the plan names, no answer asked
            n = len(resolve_recipients(s, publish.tiers, [u.id for u in units])[0])
            out["why"] = (out["why"][0] + f",不叫应;将发布给{n}人(无需回复)",
                          out["why"][1] + f": not called out; published to {n} persons (no answer asked)")
        return out
    tiers = plan.tiers_for(w.level)
    if not units and not any(t.scope in ("district", "departments") for t in tiers):
        out["why"] = ("预警区域与通讯录中的乡镇(街道)都不匹配", "the warning's area matches no town of the directory")
        return out
    found, gaps = resolve_targets(s, plan, [u.id for u in units], [t.id for t in tiers], at)
    by_tier: dict[str, list[dict]] = defaultdict(list)
    for t in found:
        by_tier[t["tier"]].append(t)
    out["tiers"] = [{"id": t.id, "zh": t.name_zh, "en": t.name_en, "policy": t.policy, "targets": by_tier.get(t.id, [])}
                    for t in tiers]
    out.update(total=len(found), gaps=gaps, starts=True)
    from api.services.duty import target_warnings  # the duty day's contact freshness

    out["contact_warnings"] = target_warnings(s, lib, found, at)
    return out


CALLING = ("pending", "notified", "escalated")  # targets still being called


def referenced(s: Session, w: Normalised) -> dict[str, Any]:
    """What an Update or Cancel would act on: the warning it references (the sender's own, as the intake
    finds it), its running call-out with how many are still being called, and for an Update what changes."""
    ids = [r.warning_id for r in w.refs]
    earlier = list(s.exec(select(Warning).where(col(Warning.id).in_(ids), Warning.sender == w.sender)
                          .order_by(col(Warning.received_at).desc()))) if ids else []
    first = earlier[0] if earlier else None
    callout = next((c for e in earlier if e.callout_id and (c := s.get(Callout, e.callout_id))), None)
    running = callout is not None and callout.status == "running"
    calling = 0
    if callout is not None:
        calling = s.exec(select(func.count()).select_from(CalloutTarget).where(
            CalloutTarget.callout_id == callout.id, col(CalloutTarget.state).in_(CALLING))).one()
    changes: list[dict[str, Any]] = []
    if first is not None and w.msg_type == "Update":
        new_towns = [u.id for u in units_for_areas(s, w.geocodes, w.area_descs)]
        if w.level and w.level.value != first.level:
            changes.append({"what": "level", "old": first.level, "new": w.level.value})
        if sorted(new_towns) != sorted(first.town_ids):
            changes.append({"what": "area", "old": "、".join(first.area_descs) or "—", "new": "、".join(w.area_descs) or "—"})
        if w.expires != first.expires_at:
            changes.append({"what": "expires", "old": first.expires_at, "new": w.expires})
    return {"ref_warning": first, "ref_callout": callout, "ref_running": running, "ref_calling": calling,
            "ref_changes": changes}
