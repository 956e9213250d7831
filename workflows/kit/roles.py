"""The roles' names, Chinese and English, defined once: the workflows' refusals, the console's pages and the
duty roster read them from here (workflows may not import api/ or store/, so the table lives in the kit).

`may_not(role, what_zh, what_en, allowed)` is the one wording of "this role may not do this step; these
may": Chinese first, then the English the REST clients and the logs have always read, e.g.

    管理员不能登记口头报告;可由:专业值班员、值班干部、值班长、带班领导办理 / role 'admin' may not verbal here; allowed: …

Pure: the standard library only (workflows import it inside the sandbox).
"""
from __future__ import annotations

from collections.abc import Iterable

ROLE_NAMES: dict[str, tuple[str, str]] = {
    "duty_staff": ("专业值班员", "Duty staff"),
    "duty_cadre": ("值班干部", "Duty cadre"),
    "duty_chief": ("值班长", "Duty chief"),
    "leading_leader": ("带班领导", "Leading leader"),
    "commander": ("指挥长", "Commander"),
    "supervisor": ("督查", "Supervisor"),
    "admin": ("管理员", "Administrator"),
}

# the duty roster's 1+1+X+X roles, the leader first
ROSTER_ROLES = ("leading_leader", "duty_chief", "duty_cadre", "duty_staff")


def role_name(role: str | None, lang: str = "zh") -> str:
    """A role's name in `lang` (zh | en); an unknown role as given."""
    if not role:
        return ""
    names = ROLE_NAMES.get(role)
    return role if names is None else names[0 if lang != "en" else 1]


def role_list(roles: Iterable[str], lang: str = "zh") -> str:
    """Roles' names, joined as the language lists them."""
    return ("、" if lang != "en" else ", ").join(role_name(r, lang) for r in roles)


def may_not(role: str, what_zh: str, what_en: str, allowed: Iterable[str]) -> str:
    """The refusal of a step to a role, Chinese first (who may do it instead), then the English."""
    allowed = list(allowed)
    who = f"可由:{role_list(allowed)}办理" if allowed else "仅管理员可办理"
    return f"{role_name(role)}不能{what_zh};{who} / role {role!r} may not {what_en}; allowed: {', '.join(allowed)}"
