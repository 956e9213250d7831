"""The preview of a new call-out: whom a warning would call, decided as the intake decides it
(api/services/warnings.py), resolved as the workflow resolves it; run with a database session."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlmodel import Session

from api.services.warnings import Normalised, plan_for
from definitions.loader import Library
from store.directory import units_for_areas
from store.targets import resolve_targets


def preview(s: Session, lib: Library, w: Normalised, at: datetime) -> dict[str, Any]:
    """Who a warning would call, decided as the intake decides it, resolved as the workflow resolves it."""
    loaded = plan_for(lib, w)
    units = units_for_areas(s, w.geocodes, w.area_descs)
    out: dict[str, Any] = {"warning": w, "plan": loaded.model if loaded else None, "towns": units, "tiers": [],
                           "total": 0, "gaps": [], "starts": False, "why": None}
    if loaded is None:
        out["why"] = "no call-out plan matches and there is no default plan"
        return out
    plan = loaded.model
    if w.msg_type != "Alert":
        out["why"] = f"a CAP {w.msg_type} is passed to the running call-out it references ({', '.join(w.references)})"
        return out
    if w.level is None or w.level < plan.min_level:
        out["why"] = ("no level" if w.level is None else f"{w.level.value} is below the plan's {plan.min_level.value}")
        return out
    tiers = plan.tiers_for(w.level)
    if not units and not any(t.scope in ("district", "departments") for t in tiers):
        out["why"] = "the warning's area matches no town of the directory"
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
