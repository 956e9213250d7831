"""Audit subjects: one function per kind builds a subject, and `kind_of` says which kind a subject is.

Pure functions (no I/O): workflows, activities, the API, the replay and the case file all use them.

| kind | subject | built by |
| --- | --- | --- |
| call-out | `callout-<warning id>` (its workflow id) | `callout_subject` |
| publication below orange (精准发布) | `publication-<warning id>` (its workflow id) | `publication_subject` |
| warning without a call-out | `W<12 hex>` (hash of sender\\|identifier) | `warning_subject` |
| incident (reporting chain) | the incident's id | `incident_subject` |
| activation | `activation/<activation id>` | `activation_subject` |
| review | `review/<incident id>` | `review_subject` |
| hotline work order | its workflow id `workorder-<source>-<ticket>` | workflows/workorder |
| monthly bulletin 通报 | `bulletin/<YYYY-MM>` (workflow `bulletin-<YYYY-MM>`) | workflows/bulletin.py |
| a notice to those on duty | the subject it is about (workflow `notice-<subject>-<key>`) | workflows/notice.py |
| response proposal | `proposal/<warning id>-<plan id>` | `proposal_subject` |
| duty procedures | their workflow ids: `drill-…`, `handover-…`, `spotcheck-…`, `freshness-…`, `readiness-…` | workflows/duty… |
| anchors, gateway | `_anchors`, `gateway` | store/audit.py, webhooks |
| the register's edits (应急资源) | `resources` | api/services/resources.py |

Call-out and incident subjects keep the form they had before kinds were made explicit: sealed
case files, replays and running workflows name them so, and a rename would split a chain. The
kind of every subject is therefore told by its prefix, and an incident id — the one subject a
caller names — may take no other kind's prefix or form (`validate_incident_id`): it cannot land
in a call-out's chain (`callout-W…`) nor take a future one's id in advance (issue 16, finding 13).
"""
from __future__ import annotations

import re

INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
WARNING_ID = re.compile(r"^W[0-9a-f]{12}$")
# prefix → kind; workflow-id prefixes are reserved too (event ids are "<workflow id>/<step>")
PREFIXES: dict[str, str] = {
    "callout-": "callout", "publication-": "publication", "activation/": "activation", "review/": "review",
    "proposal/": "proposal", "drill-": "drill", "handover-": "handover", "spotcheck-": "spotcheck", "freshness-": "freshness",
    "readiness-": "readiness", "_": "audit", "incident-": "workflow", "activation-": "workflow", "review-": "workflow", "proposal-": "workflow",
    "workorder-": "workorder", "bulletin/": "bulletin", "bulletin-": "workflow", "notice-": "workflow",
}
NAMES: dict[str, str] = {"_anchors": "audit", "gateway": "gateway", "console-login": "login", "resources": "resources"}


class SubjectError(ValueError):
    """An id that would name another kind's audit subject."""


def callout_subject(warning_id: str) -> str:
    """A call-out's subject, which is also its workflow id."""
    return f"callout-{warning_id}"


def publication_subject(warning_id: str) -> str:
    """A publication's subject, which is also its workflow id."""
    return f"publication-{warning_id}"


def warning_subject(warning_id: str) -> str:
    """A warning that started no call-out (and was not passed to one)."""
    return warning_id


def incident_subject(incident_id: str) -> str:
    return incident_id


def activation_subject(activation_id: str) -> str:
    return activation_id if activation_id.startswith("activation/") else f"activation/{activation_id}"


def review_subject(incident_id: str) -> str:
    return f"review/{incident_id}"


def proposal_id_of(warning_id: str, plan_id: str) -> str:
    """A response proposal's id: one per warning and plan (a resend proposes nothing twice)."""
    return f"{warning_id}-{plan_id}"


def proposal_workflow_id(proposal_id: str) -> str:
    return f"proposal-{proposal_id}"


def proposal_subject(proposal_id: str) -> str:
    """A response proposal's audit subject (workflows/proposal.py)."""
    return f"proposal/{proposal_id}"


def kind_of(subject: str) -> str:
    """callout | publication | warning | incident | activation | review | proposal | drill | handover | spotcheck | freshness | readiness | audit |
    gateway | login | workflow, from the subject's form alone."""
    if subject in NAMES:
        return NAMES[subject]
    low = subject.lower()
    for prefix, kind in PREFIXES.items():
        if low.startswith(prefix):
            return kind
    if WARNING_ID.match(subject):
        return "warning"
    return "incident"


def validate_incident_id(incident_id: str) -> str:
    """The id if it may name an incident; SubjectError saying why not otherwise."""
    if not INCIDENT_ID.match(incident_id):
        raise SubjectError("an incident id is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    kind = kind_of(incident_id)
    if kind != "incident":
        raise SubjectError(f"{incident_id!r} has the form of a {kind} id, not an incident's "
                           "(reserved: callout-, publication-, activation-, review-, proposal-, incident-, drill-, handover-, spotcheck-, "
                           "freshness-, readiness-, bulletin-, notice-, W + 12 hex digits) / 该编号与其他类型的编号冲突")
    return incident_id
