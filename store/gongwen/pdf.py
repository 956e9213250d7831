"""An official document as HTML and PDF: the template store/templates/gongwen.html through the one PDF
renderer (store.report.render_pdf, WeasyPrint)."""
from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, select_autoescape

from store.gongwen import DRAFT_MARK, OfficialDoc
from store.report import TEMPLATES, render_pdf

# the standard's typefaces first (as installed on an office machine), then the Noto CJK stand-ins
# (Debian fonts-noto-cjk, which the Makefile installs)
FONTS = {
    "fang": "'FangSong_GB2312', 'FangSong', 'STFangsong', 'Noto Serif CJK SC', serif",
    "song": "'SimSun', 'Noto Serif CJK SC', serif",
    "title": "'FZXiaoBiaoSong-B05S', 'Noto Serif CJK SC', serif",
    "hei": "'SimHei', 'Noto Sans CJK SC', sans-serif",
    "kai": "'KaiTi_GB2312', 'KaiTi', 'STKaiti', 'Noto Serif CJK SC', serif",
}


@lru_cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


def render_html(doc: OfficialDoc) -> str:
    return _env().get_template("gongwen.html").render(d=doc, fonts=FONTS, draft_mark=DRAFT_MARK)


def render(doc: OfficialDoc) -> bytes:
    """The document as a PDF (A4)."""
    return render_pdf(render_html(doc))
