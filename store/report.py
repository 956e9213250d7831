"""The event report 初步事件报告 (seed 003 篇七 §三(八)): JSON, HTML and PDF (WeasyPrint).

`render(data)` turns the report's data — incident, timeline, statistics (store/review/),
the units' summaries, the lessons and the leading leader's sign-off — into HTML with
inline SVG charts (no JavaScript, no CDN) and a PDF of the same HTML. Chinese first,
English second. The JSON is the data itself, canonical (sorted keys) so its hash is stable.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from definitions.schema.reporting import FIGURES_ZH

TEMPLATES = Path(__file__).parent / "templates"
FONT_STACK = "'Noto Sans CJK SC', 'Noto Sans SC', 'WenQuanYi Micro Hei', 'Source Han Sans SC', sans-serif"
TIER_ZH = {"district_leaders": "区党政主要领导", "departments": "区级部门", "town_leaders": "乡镇(街道)党政主要负责人",
           "towns": "乡镇(街道)", "villages": "村(社区)", "recipient": "报送对象", "overdue": "督促", "trigger": "触发"}
CHANNEL_ZH = {"sms": "短信", "voice": "语音电话", "im": "即时通讯", "link": "确认链接", "proxy": "代为确认",
              "phone": "电话", "?": "未知"}
STATE_ZH = {"on_time": "按时", "late": "迟报", "omitted": "漏报", "lapsed": "未报(已终止)", "overdue": "超时未报",
            "open": "未到期"}
ITEM_STATE_ZH = {"on_time": "按时办结", "late": "逾期办结", "overdue": "逾期未完成", "reported": "已报完成待审核",
                 "closed": "未完成即关闭", "open": "办理中"}


def canonical_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1, default=str)


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# ------------------------------------------------------------------ charts (inline SVG)


def bar_chart(title: str, rows: list[tuple[str, float | None, str]], max_value: float | None = None,
              color: str = "#2f6db5") -> Markup:
    """Horizontal bars: (label, value, text shown after the bar). None values get no bar ("—")."""
    if not rows:
        return Markup("")
    label_w, bar_w, row_h, top = 190, 300, 22, 26
    height = top + row_h * len(rows) + 8
    top_value = max_value or max([v for _, v, _ in rows if v is not None] or [1]) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 110}" height="{height}" '
             f'viewBox="0 0 {label_w + bar_w + 110} {height}" font-family="{escape(FONT_STACK)}" font-size="12" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="0" y="15" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (label, value, text) in enumerate(rows):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(label[:18])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="14" fill="#eef2f7"/>')
        if value is not None:
            w = max(0.0, min(1.0, value / top_value)) * bar_w
            parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="{color}"/>')
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 14}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def step_chart(title: str, levels: list[dict[str, Any]], end: str | None) -> Markup:
    """The response level over time: one band per level in force."""
    points = [(datetime.fromisoformat(lv["at"]), str(lv["to"])) for lv in levels if lv.get("at") and lv.get("to")]
    if not points:
        return Markup("")
    stop = datetime.fromisoformat(end) if end else points[-1][0]
    start = points[0][0]
    span = max((stop - start).total_seconds(), 1.0)
    order = ["IV", "III", "II", "I"]
    width, height, left = 560, 120, 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 20}" height="{height + 40}" '
             f'font-family="{escape(FONT_STACK)}" font-size="12" role="img" aria-label="{escape(title)}">',
             f'<text x="0" y="15" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, lv in enumerate(order):
        y = 30 + (3 - i) * 25
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{lv}级</text>')
        parts.append(f'<line x1="{left}" y1="{y + 20}" x2="{left + width}" y2="{y + 20}" stroke="#ddd"/>')
    for n, (at, lv) in enumerate(points):
        nxt = points[n + 1][0] if n + 1 < len(points) else stop
        x0 = left + (at - start).total_seconds() / span * width
        x1 = left + (nxt - start).total_seconds() / span * width
        idx = order.index(lv) if lv in order else 0
        y = 30 + (3 - idx) * 25
        parts.append(f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 2):.1f}" height="16" fill="#c0392b"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def level_zh(value: Any) -> str:
    from store.review import LEVEL_ZH

    return LEVEL_ZH.get(str(value), str(value)) if value not in (None, "") else "—"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _mins(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f}秒"
    return f"{seconds / 60:.1f}分钟"


def charts(stats: dict[str, Any]) -> dict[str, Markup]:
    out: dict[str, Markup] = {}
    for i, c in enumerate(stats.get("callouts") or []):
        tiers = c.get("per_tier") or {}
        out[f"ack_rate_{i}"] = bar_chart("各层级应答率 Acknowledgement rate by tier", [
            (TIER_ZH.get(t, t), v["ack_rate"], f"{_pct(v['ack_rate'])}({v['acknowledged']}/{v['targets']})")
            for t, v in tiers.items()], max_value=1.0)
        out[f"ack_time_{i}"] = bar_chart("各层级应答用时中位数 Median time to acknowledge", [
            (TIER_ZH.get(t, t), v["time_to_ack"]["median_s"], _mins(v["time_to_ack"]["median_s"]))
            for t, v in tiers.items()], color="#16a085")
    ch = stats.get("channels") or {}
    if ch:
        out["channels"] = bar_chart("各渠道失败率 Channel failure rate", [
            (CHANNEL_ZH.get(k, k), v["failure_rate"], f"{_pct(v['failure_rate'])}({v['failed']}/{v['sends']})")
            for k, v in ch.items()], max_value=1.0, color="#c0392b")
    for i, a in enumerate(stats.get("activations") or []):
        out[f"levels_{i}"] = step_chart("响应等级变化 Response level over time", a.get("levels") or [],
                                        a.get("terminated_at"))
    return out


# ------------------------------------------------------------------ HTML and PDF


SUPPLY_STATES_ZH = {"requested": "待审批", "approved": "已批准", "refused": "未批准", "picked_up": "已出库",
                    "received": "已签收"}
# 灾情统计 columns of the event report, in the order of the 自然灾害情况统计 forms
FIGURES_ZH_ROWS = [(k, f"{FIGURES_ZH[k][0]}({FIGURES_ZH[k][1]})") for k in (
    "affected_population", "relocated", "deaths", "missing", "injured", "houses_collapsed", "houses_damaged",
    "crop_area_ha", "direct_loss_wan")]


@lru_cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    return env


def report_env(timezone: str) -> Environment:
    """The templates' environment with the filters every printed document uses: `local` (a time in the duty
    office's time zone), `pct`, `mins` (the event report, the monthly bulletin)."""
    tz = ZoneInfo(timezone)

    def local(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if not value:
            return "—"
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return at.astimezone(tz).strftime(fmt)

    env = _env()
    env.filters.update(local=local, pct=_pct, mins=_mins)
    return env


def render_html(data: dict[str, Any], timezone: str = "Asia/Shanghai") -> str:
    env = report_env(timezone)
    env.filters.update(tier=lambda t: TIER_ZH.get(t, t),
                       channel=lambda c: CHANNEL_ZH.get(c, c), state=lambda s: STATE_ZH.get(s, s), level=level_zh,
                       item_state=lambda s: ITEM_STATE_ZH.get(s, s))
    env.filters["num"] = lambda v: f"{v:g}" if isinstance(v, (int, float)) else (v if v is not None else "—")
    return env.get_template("event_report.html").render(d=data, charts=charts(data.get("statistics") or {}),
                                                        font_stack=FONT_STACK, figures_zh=FIGURES_ZH_ROWS,
                                                        supply_states=SUPPLY_STATES_ZH)


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def cjk_font_available() -> bool:
    """Whether fontconfig knows a CJK font (without one, Chinese in the PDF comes out as boxes)."""
    import shutil
    import subprocess

    if shutil.which("fc-list") is None:
        return False
    try:
        out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


def render(data: dict[str, Any], timezone: str = "Asia/Shanghai", pdf: bool = True) -> tuple[str, str, bytes | None]:
    """(JSON, HTML, PDF) of the report."""
    html = render_html(data, timezone)
    return canonical_json(data), html, (render_pdf(html) if pdf else None)
