"""A reporting chain's figures for the event report: its time limits met on time, late, omitted or overdue,
the reports submitted, triggers, refusals, receipts confirmed, escalations, channel failures."""
from __future__ import annotations

from typing import Any

from store.replay import EventLike, zh_number
from store.review.common import ESCALATED_SUFFIX, Sends, _iso, _t, is_send, rate
from workflows.kit.events import (
    ChainSettled,
    DeadlineStep,
    Escalation,
    IncidentReceived,
    Reporting,
    Sent,
    Step,
    Trigger,
    WrittenReportStep,
)
from workflows.reporting.models import FINAL_LABEL

LABELS = {"verbal": "口头报告", "written": "书面报告"}
RECEIPT_SENT = f"{Reporting.RECEIPT}.{Escalation.SENT}"
RECEIPT_ACK = f"{Reporting.RECEIPT}.{Escalation.ACK}"
STATES = ("on_time", "late", "omitted", "lapsed", "overdue", "open")  # lapsed: settled before due, no longer owed


class _Chain:
    def __init__(self, subject: str) -> None:
        self.deadlines: dict[str, dict[str, Any]] = {}
        self.sends = Sends()
        self.out: dict[str, Any] = {"subject": subject, "title": None, "received_at": None, "severity": None,
                                    "closed_at": None, "settled_by": None, "reports": [], "triggers": [],
                                    "refusals": 0}
        self.receipts: dict[str, dict[str, Any]] = {}
        self.escalations = 0
        self.drafts: dict[tuple[int, int], dict[str, Any]] = {}  # (seq, version) -> content (灾情统计, casualties)
        self.figures: dict[str, Any] = {"intake": None, "reports": []}

    def dl(self, key: str, label: str | None = None, due: Any = None) -> dict[str, Any]:
        d = self.deadlines.setdefault(key, {"key": key, "label": label or key, "due_at": None, "met_at": None,
                                            "met_by": None, "late_by_s": None, "overdue": False, "omitted": False,
                                            "lapsed": False})
        if label:
            d["label"] = label
        if due and not d["due_at"]:
            d["due_at"] = _iso(_t(due))
        return d

    def apply(self, ev: EventLike) -> None:
        k, p = ev.kind, ev.payload
        report = k.startswith("report.")
        if k == Reporting.RECEIVED:
            self.received(ev, IncidentReceived.read(p))
        elif k == Reporting.VERBAL_MADE:
            d = self.dl("verbal", LABELS["verbal"])
            d["met_at"], d["met_by"] = _iso(ev.at), LABELS["verbal"]
            d["late_by_s"] = d["late_by_s"] or 0
        elif report and k.count(".") == 2 and k.endswith((".drafted", ".approved")):
            self.figures_of(ev, k.rsplit(".", 1)[1])
        elif report and k.endswith(".submitted") and k.count(".") == 2:
            self.submitted(ev, k.split(".")[1], WrittenReportStep.read(p))
        elif report and k.endswith((".late", ".overdue", ".omitted", ".lapsed")):
            self.deadline(k.rsplit(".", 1)[1], DeadlineStep.read(p))
        elif k == Reporting.TRIGGER:
            t = Trigger.read(p)
            self.out["triggers"].append({"at": _iso(ev.at), "trigger": t.trigger, "name": t.name})
        elif k == Reporting.SETTLED and ChainSettled.read(p).ended:  # ended with the response or the review
            self.out["settled_by"], self.out["closed_at"] = ChainSettled.read(p).by, _iso(ev.at)
        elif k == Reporting.CLOSED:
            self.out["closed_at"] = _iso(ev.at)
        elif k == Reporting.REFUSED:
            self.out["refusals"] += 1
        elif k.endswith(ESCALATED_SUFFIX):
            self.escalations += 1
        self.sent_or_answered(ev)

    def received(self, ev: EventLike, r: Any) -> None:
        self.out.update(title=r.title, received_at=_iso(ev.at), severity=r.severity, category=r.category,
                        place=r.place, rules=r.rules, rules_version=r.rules_version)
        if isinstance(ev.payload.get("figures"), dict):
            self.figures["intake"] = {"at": _iso(ev.at), "figures": _figures(ev.payload["figures"]),
                                      "casualties": _casualties(ev.payload.get("casualties"))}
        for key, due in (r.deadlines or {}).items():
            self.dl(key, LABELS.get(key), due)

    def submitted(self, ev: EventLike, what: str, w: Any) -> None:
        seq = int(w.seq or 0)
        key = "written" if seq == 0 else f"followup_{seq}"
        label = FINAL_LABEL if what == "final" else LABELS["written"] if seq == 0 else f"续报{zh_number(seq)}"
        d = self.dl(key, label)  # the limit (the next report's; the final report's when it met it); met_by says by what
        d["met_at"], d["met_by"] = _iso(ev.at), w.label
        d["late_by_s"] = d["late_by_s"] or 0
        self.out["reports"].append({"seq": seq, "label": w.label, "kind": what, "submitted_at": _iso(ev.at),
                                    "approved_by": w.approved_by, "on_time": w.on_time})

    def figures_of(self, ev: EventLike, verb: str) -> None:
        """灾情统计: each approved report's totals (its draft's content, as approved), in order."""
        p = ev.payload
        seq, version = int(p.get("seq") or 0), int(p.get("version") or 0)
        if verb == "drafted":
            self.drafts[(seq, version)] = p.get("content") or {}
            return
        content = self.drafts.get((seq, version)) or {}
        if isinstance(content.get("figures"), dict):
            self.figures["reports"].append({"seq": seq, "label": p.get("label"), "approved_at": _iso(ev.at),
                                            "figures": _figures(content["figures"]),
                                            "casualties": _casualties(content.get("casualties")),
                                            "correction": content["figures"].get("correction")})

    def deadline(self, verb: str, s: Any) -> None:
        d = self.dl(s.deadline or "?", s.label, s.due_at)
        if verb == "late":
            d["late_by_s"] = int(s.late_by_s or 0)
            d["met_at"] = d["met_at"] or s.met_at
        else:
            d[verb] = True  # overdue | omitted | lapsed

    def sent_or_answered(self, ev: EventLike) -> None:
        """Sends and their delivery reports (every episode's), and the receipts asked for and confirmed."""
        k, p = ev.kind, ev.payload
        if is_send(ev):
            self.sends.sent(ev)
            if k == RECEIPT_SENT and p.get(Sent.k.purpose) == "notify":
                self.receipts.setdefault(f"{p.get(Sent.k.episode)}|{p.get(Sent.k.target)}", {"confirmed": False})
        elif k.endswith("." + Escalation.DELIVERY):
            self.sends.delivery(ev)
        elif k == RECEIPT_ACK:
            self.receipts.setdefault(f"{p.get(Step.k.episode)}|{p.get(Step.k.target)}", {})["confirmed"] = True


FIGURES = ("affected_population", "relocated", "deaths", "missing", "injured", "houses_collapsed", "houses_damaged",
           "crop_area_ha", "direct_loss_wan")


def _figures(f: dict[str, Any]) -> dict[str, float]:
    return {k: f.get(k) or 0 for k in FIGURES if k not in ("deaths", "missing", "injured")}


def _casualties(c: Any) -> dict[str, int]:
    c = c if isinstance(c, dict) else {}
    return {k: int(c.get(k) or 0) for k in ("deaths", "missing", "injured")}


def disaster_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The running totals (累计) each report gave, what it added (本次新增) over the one before, and the totals of
    the last one: the figures summed over the follow-ups."""
    rows, before = [], None
    steps = ([{"label": "接报", "at": figures["intake"]["at"], **figures["intake"]}] if figures["intake"] else []) + [
        {"label": r["label"], "at": r["approved_at"], **r} for r in figures["reports"]]
    for r in steps:
        total = {**r["figures"], **r["casualties"]}
        total = {k: total.get(k, 0) for k in FIGURES}
        added = {k: round(total[k] - (before or {}).get(k, 0), 4) for k in FIGURES}
        rows.append({"label": r["label"], "at": r["at"], "total": total, "added": added,
                     "correction": r.get("correction")})
        before = total
    return {"reports": rows, "total": before}


def _rows(deadlines: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for d in sorted(deadlines.values(), key=lambda d: (d["due_at"] or d["met_at"] or "9", d["key"])):
        if d["late_by_s"]:
            state = "late"
        elif d["met_at"] is not None:
            state = "on_time"
        elif d["omitted"]:
            state = "omitted"
        elif d["lapsed"]:
            state = "lapsed"
        else:
            state = "overdue" if d["overdue"] else "open"
        late = d["late_by_s"] or None
        rows.append({**{k: d[k] for k in ("key", "label", "due_at", "met_at", "met_by")}, "state": state,
                     "late_by_s": late, "late_by_min": -(-late // 60) if late else None})
    return rows


def reporting_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    chain = _Chain(subject)
    for ev in events:
        chain.apply(ev)
    rows = _rows(chain.deadlines)
    count = {s: sum(r["state"] == s for r in rows) for s in STATES}
    receipts = chain.receipts
    chain.out.update({
        "deadlines": rows,
        "compliance": {"deadlines": len(rows), **count,
                       "on_time_rate": rate(count["on_time"], len(rows) - count["open"] - count["lapsed"])},
        "receipts": {"asked": len(receipts), "confirmed": sum(1 for r in receipts.values() if r.get("confirmed"))},
        "escalations": chain.escalations, "channels": chain.sends.per_channel(),
        "figures": disaster_figures(chain.figures)})
    return chain.out
