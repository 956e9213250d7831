"""An official document as .docx (python-docx): the same parts as the PDF, named in the fonts an office machine
has (仿宋, 黑体, 方正小标宋简体, 楷体: Word and WPS fall back on their own where one is missing)."""
from __future__ import annotations

import io

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

from store.gongwen import DRAFT_MARK, OfficialDoc

FANG, HEI, TITLE, KAI = "仿宋_GB2312", "黑体", "方正小标宋简体", "楷体_GB2312"
RED = RGBColor(0xD4, 0x00, 0x00)
LINE = Pt(28.9)  # 22 lines in the type area


def _run(par, text: str, font: str, size: float, bold: bool = False, color: RGBColor | None = None):
    run = par.add_run(text)
    run.font.name = font
    run.font.size = Pt(size)
    run.font.bold = bold
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), font)
    if color is not None:
        run.font.color.rgb = color
    return run


def _par(document, align=None, indent: bool = False, before: float = 0, after: float = 0):
    par = document.add_paragraph()
    fmt = par.paragraph_format
    fmt.line_spacing = LINE
    fmt.space_before, fmt.space_after = Pt(before), Pt(after)
    if align is not None:
        par.alignment = align
    if indent:
        fmt.first_line_indent = Pt(32)  # two characters of 3号
    return par


def _border(par, where: str, color: str, size: int) -> None:
    """A rule above or below a paragraph (the red separating line, the lines of the 版记)."""
    ppr = par._element.get_or_add_pPr()
    borders = ppr.find(qn("w:pBdr"))
    if borders is None:
        borders = ppr.makeelement(qn("w:pBdr"), {})
        ppr.append(borders)
    borders.append(borders.makeelement(qn(f"w:{where}"), {qn("w:val"): "single", qn("w:sz"): str(size),
                                                           qn("w:space"): "1", qn("w:color"): color}))


def _page(document) -> None:
    sec = document.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    sec.page_width, sec.page_height = Mm(210), Mm(297)
    sec.top_margin, sec.bottom_margin, sec.left_margin, sec.right_margin = Mm(37), Mm(35), Mm(28), Mm(26)


def _head(document, doc: OfficialDoc) -> None:
    if doc.draft:
        _run(_par(document, WD_ALIGN_PARAGRAPH.RIGHT), f"{DRAFT_MARK} · 未经签发", HEI, 12, color=RGBColor(0x88, 0x88, 0x88))
    _run(_par(document, WD_ALIGN_PARAGRAPH.CENTER, after=12), doc.organ, TITLE, 28, bold=True, color=RED)
    line = _par(document, WD_ALIGN_PARAGRAPH.CENTER if not doc.signer else None)
    if doc.signer:  # an upward document: the number on the left, the signer on the right
        line.paragraph_format.tab_stops.add_tab_stop(Mm(156) - Pt(16), alignment=2)  # WD_TAB_ALIGNMENT.RIGHT
        _run(line, "\u3000" + doc.number + "\t签发人：", FANG, 16)
        _run(line, doc.signer, KAI, 16)
    else:
        _run(line, doc.number, FANG, 16)
    _border(line, "bottom", "D40000", 12)
    title = doc.title + (f"({DRAFT_MARK})" if doc.draft else "")
    _run(_par(document, WD_ALIGN_PARAGRAPH.CENTER, before=28.9, after=28.9), title, TITLE, 22, bold=True)
    _run(_par(document), "、".join(doc.recipients) + "：", FANG, 16)


def _body(document, doc: OfficialDoc) -> None:
    for heading, text in doc.sections:
        if heading:
            _run(_par(document, indent=True), heading, HEI, 16)
        for para in (p.strip() for p in text.split("\n")):
            if para:
                _run(_par(document, indent=True), para, FANG, 16)
    sign = _par(document, WD_ALIGN_PARAGRAPH.RIGHT, before=28.9)
    sign.paragraph_format.right_indent = Pt(32)
    _run(sign, doc.organ, FANG, 16)
    date = _par(document, WD_ALIGN_PARAGRAPH.RIGHT)
    date.paragraph_format.right_indent = Pt(32)
    _run(date, doc.date_zh, FANG, 16)


def _record(document, doc: OfficialDoc) -> None:
    first = None
    if doc.copies_to:
        first = _par(document, before=40)
        _run(first, "\u3000抄送：" + "、".join(doc.copies_to) + "。", FANG, 14)
        _border(first, "top", "000000", 6)
        _border(first, "bottom", "000000", 4)
    printed = _par(document, before=0 if first is not None else 40)
    printed.paragraph_format.tab_stops.add_tab_stop(Mm(156) - Pt(14), alignment=2)
    _run(printed, f"\u3000{doc.organ}\t{doc.issued.year}年{doc.issued.month}月{doc.issued.day}日印发", FANG, 14)
    if first is None:
        _border(printed, "top", "000000", 6)
    _border(printed, "bottom", "000000", 6)
    if doc.reference:
        _run(_par(document), doc.reference, HEI, 9, color=RGBColor(0x66, 0x66, 0x66))


def render_docx(doc: OfficialDoc) -> bytes:
    document = Document()
    _page(document)
    core = document.core_properties
    core.title, core.subject = doc.title, doc.number
    core.keywords = DRAFT_MARK if doc.draft else "签发"
    _head(document, doc)
    _body(document, doc)
    _record(document, doc)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
