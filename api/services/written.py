"""The written reports of the reporting chain 信息报送 as official documents 公文 for 报送: one version of one
report (书面报告, 续报N, 终报) as an `OfficialDoc`, rendered to PDF or .docx (store/gongwen/). An approved
version carries its approver as 签发人; any other version is a draft (草稿) and says so on every page."""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from api.services.directory import names
from api.services.errors import ServiceError
from definitions.loader import Library
from definitions.schema.reporting import CATEGORY_ZH
from store.directory import district
from store.gongwen import OfficialDoc, sections
from store.incidents import Incident, IncidentReport, ReportReceipt, ReportVersion
from store.roster import DUTY_ROLES

FORMATS = {"pdf": "application/pdf",
           "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
ROLE_ZH = {**{k: zh for k, (zh, _) in DUTY_ROLES.items()}, "admin": "管理员", "supervisor": "督查员",
           "commander": "指挥长"}


class DocumentError(ServiceError):
    """No such incident, report, version or format."""


def actor_name(s: Session, actor: str | None) -> str:
    """A person's name for a person id; the role's Chinese name for a token (`role:label`)."""
    if not actor:
        return ""
    found = names(s, {actor}).get(actor)
    if found:
        return found
    role = actor.split(":", 1)[0]
    return ROLE_ZH.get(role, actor)


def _number(s: Session, inc: Incident, seq: int, tz: ZoneInfo) -> str:
    """发文字号: the district's first character, 政值报, the year, the incident's ordinal in the year (its
    follow-up reports: -1, -2 …)."""
    local = inc.received_at.astimezone(tz)
    year_start = datetime(local.year, 1, 1, tzinfo=tz).astimezone(UTC)
    n = s.exec(select(func.count()).select_from(Incident).where(
        col(Incident.received_at) >= year_start, col(Incident.received_at) <= inc.received_at)).one()
    d = district(s)
    prefix = (d.name[0] if d and d.name else "") + "政值报"
    return f"{prefix}〔{local.year}〕{n}{f'-{seq}' if seq else ''}号"


def _recipients(s: Session, lib: Library, inc: Incident, seq: int) -> tuple[list[str], list[str]]:
    """主送 (the rules' recipients but their copies 抄报) and 抄送 (any other office the report was sent to)."""
    loaded = lib.reporting_rules(inc.rules_id) or lib.reporting_rules(None)
    main = [r.name_zh for r in loaded.model.recipients if not r.cc] if loaded else []
    sent = [r.name for r in s.exec(select(ReportReceipt).where(ReportReceipt.incident_id == inc.id, ReportReceipt.seq == seq)
                                   .order_by(col(ReportReceipt.id))) if r.name]
    if not main:
        main = sent or ["区委办值班室", "区府办值班室"]
    return main, [n for n in dict.fromkeys(sent) if n not in main]


def _event(inc: Incident) -> str:
    """What happened in a word: 建筑施工事故, 山体滑坡灾害, else the category (突发公共卫生事件…)."""
    if inc.subtype:
        return inc.subtype + {"accident": "事故", "natural_disaster": "灾害"}.get(inc.category, "事件")
    return CATEGORY_ZH.get(inc.category, "突发事件")


def official_document(s: Session, lib: Library, incident_id: str, seq: int, version: int | None,
                      timezone: str) -> tuple[OfficialDoc, str]:
    """One version (default: the latest) of one report as a document, and its file name (without suffix).
    Raises DocumentError 404."""
    tz = ZoneInfo(timezone)
    inc = s.get(Incident, incident_id)
    if inc is None:
        raise DocumentError(404, f"无此事件 {incident_id!r} / no incident {incident_id!r}")
    report = s.exec(select(IncidentReport).where(IncidentReport.incident_id == incident_id,
                                                 IncidentReport.seq == seq)).first()
    if report is None:
        raise DocumentError(404, f"该事件无第{seq}份书面报告 / no report {seq} of {incident_id!r}")
    stmt = select(ReportVersion).where(ReportVersion.incident_id == incident_id, ReportVersion.seq == seq)
    stmt = stmt.where(ReportVersion.version == version) if version is not None else stmt.order_by(
        col(ReportVersion.version).desc())
    v = s.exec(stmt).first()
    if v is None:
        raise DocumentError(404, f"{report.label}无此版本 {version} / no version {version} of this report")
    approved = v.decision == "approve"
    occurred = v.content.get("occurred_at")
    occurred_local = datetime.fromisoformat(occurred).astimezone(tz) if occurred else None
    main, copies = _recipients(s, lib, inc, seq)
    issued = (v.reviewed_at if approved and v.reviewed_at else v.drafted_at).astimezone(tz).date()
    doc = OfficialDoc(
        organ=f"{d.name if (d := district(s)) else ''}人民政府总值班室", number=_number(s, inc, seq, tz),
        title=f"关于{inc.title or inc.place}的{'报告' if report.kind == 'written' else report.label}",
        recipients=main, sections=sections(v.content, occurred_local, _event(inc)),
        signer=actor_name(s, v.reviewed_by) if approved else "", issued=issued, copies_to=copies,
        draft=not approved,
        reference=f"事件编号 {inc.id} · {report.label} 第{v.version}版 · 起草 {actor_name(s, v.drafted_by)}")
    return doc, f"{inc.id}-{report.label}-v{v.version}{'' if approved else '-草稿'}"


def disposition(filename: str) -> str:
    """A Content-Disposition for a Chinese file name (an ASCII fallback, then the UTF-8 name)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def render(doc: OfficialDoc, fmt: str) -> bytes:
    if fmt == "pdf":
        from store.gongwen.pdf import render as render_pdf

        return render_pdf(doc)
    if fmt == "docx":
        from store.gongwen.word import render_docx

        return render_docx(doc)
    raise DocumentError(404, f"无此格式 {fmt!r}(可选 pdf、docx)/ no format {fmt!r}")
