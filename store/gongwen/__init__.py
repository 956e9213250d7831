"""A written report 书面报告 in the layout of an official document 公文 (GB/T 9704 as far as sensible), for 报送.

`OfficialDoc` is what the document says, whatever it is rendered to: `pdf.render_pdf` (HTML through the one
PDF renderer, store.report.render_pdf) and `word.render_docx` (python-docx). `sections(content)` turns a
report version's content (workflows/reporting Draft: occurred_at, place, what_happened, casualties, measures,
trend, next_steps, cause) into the numbered sections of the body (一、二、…; facts fast, causes with care).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

DIGITS = "〇一二三四五六七八九"
DRAFT_MARK = "草稿"


def zh_number(n: int) -> str:
    """1..99 in Chinese numerals: 一, 十, 十二, 二十, 二十一."""
    if n < 10:
        return DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else DIGITS[tens]) + "十" + (DIGITS[ones] if ones else "")


def zh_date(d: date) -> str:
    """The date of a document in Chinese numerals: 二〇二六年十二月四日."""
    return "".join(DIGITS[int(c)] for c in str(d.year)) + f"年{zh_number(d.month)}月{zh_number(d.day)}日"


@dataclass
class OfficialDoc:
    organ: str  # 发文机关, e.g. 青溪区人民政府总值班室
    number: str  # 发文字号, e.g. 青政值报〔2026〕3号
    title: str  # 标题, e.g. 关于…的报告
    recipients: list[str]  # 主送机关
    sections: list[tuple[str, str]]  # (heading, text) of the body, the headings numbered
    signer: str  # 签发人 (the leading leader who approved it); "" while a draft
    issued: date  # 成文日期
    copies_to: list[str] = field(default_factory=list)  # 抄送
    draft: bool = False  # not approved: every page says 草稿
    reference: str = ""  # where it comes from: incident, report and version (small print in the 版记)

    @property
    def date_zh(self) -> str:
        return zh_date(self.issued)

    @property
    def printed_line(self) -> str:
        """The 印发 line of the 版记: the organ and the date in Arabic numerals."""
        return f"{self.organ}  {self.issued.year}年{self.issued.month}月{self.issued.day}日印发"

    def lines(self) -> list[str]:
        """Every line of text in reading order (tests compare the PDF and the .docx with it)."""
        out = [f"{self.organ}", self.number]
        if self.signer:
            out.append(f"签发人：{self.signer}")
        out += [self.title, "、".join(self.recipients) + "："]
        for heading, text in self.sections:
            out += [heading, text] if heading else [text]
        out += [self.organ, self.date_zh]
        if self.copies_to:
            out.append("抄送：" + "、".join(self.copies_to) + "。")
        out.append(self.printed_line)
        return out


def _casualties(c: dict[str, Any]) -> str:
    parts = [f"{label}{int(c.get(k) or 0)}人" for k, label in
             (("deaths", "死亡"), ("injured", "受伤"), ("missing", "失踪"), ("trapped", "被困")) if int(c.get(k) or 0)]
    return "、".join(parts) + "。" if parts else "暂无人员伤亡报告。"


def _when(at: datetime | None) -> str:
    return f"{at.year}年{at.month}月{at.day}日{at.hour}时{at.minute:02d}分" if at else ""


def sections(content: dict[str, Any], occurred_local: datetime | None, event: str = "") -> list[tuple[str, str]]:
    """The body: numbered sections from a report version's content; an empty optional section is left out,
    a cause not yet known is said so (慎报原因)."""
    when = _when(occurred_local)
    place = str(content.get("place") or "").strip()
    opening = "".join(x for x in (when + ("，" if when and place else ""), f"在{place}" if place else "") if x)
    facts = (opening + f"发生{event or '突发事件'}。" if opening else "") + str(content.get("what_happened") or "").strip()
    parts: list[tuple[str, str]] = [("基本情况", facts), ("人员伤亡情况", _casualties(content.get("casualties") or {})),
                                    ("已采取的处置措施", str(content.get("measures") or "").strip())]
    for key, heading in (("trend", "事态发展趋势"), ("next_steps", "下一步工作")):
        text = str(content.get(key) or "").strip()
        if text:
            parts.append((heading, text))
    cause = str(content.get("cause") or "").strip()
    parts.append(("原因初步分析", cause or "事件原因正在进一步调查核实中，核实后续报。"))
    numbered = [(f"{zh_number(i)}、{heading}", text) for i, (heading, text) in enumerate(parts, start=1)]
    return [*numbered, ("", "特此报告。")]
