"""CAP 1.2 parsing: safe, schema-validated, with the warning colour level derived.

Safety first: documents over 1 MB, DTDs, entities and external references are refused
before anything is read (defusedxml); nesting deeper than 32 levels is refused; the
document is then validated against the bundled OASIS schema (xmlschema), and the spec
rules the schema cannot express are checked (an Update or Cancel references something).
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import Enum
from functools import lru_cache
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import xmlschema
from defusedxml import DefusedXmlException
from pydantic import BaseModel, Field

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_CAP_BYTES = 1_000_000
MAX_DEPTH = 32
XSD = Path(__file__).with_name("CAP-v1.2.xsd")
_NS = {"c": CAP_NS}


class CapError(ValueError):
    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class Level(str, Enum):
    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"

    @property
    def rank(self) -> int:
        return LEVEL_ORDER.index(self)

    @property
    def zh(self) -> str:
        return {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}[self.value]


LEVEL_ORDER = [Level.blue, Level.yellow, Level.orange, Level.red]


def max_level(levels) -> Level | None:
    present = [lv for lv in levels if lv is not None]
    return max(present, key=lambda lv: lv.rank) if present else None


# colour words (simplified, traditional, English) and the Roman/Chinese grade names
_WORDS: list[tuple[re.Pattern, Level]] = [
    (re.compile(r"红色|紅色|(?<![a-z])red(?![a-z])|Ⅰ级|I级|一级|特别重大", re.I), Level.red),
    (re.compile(r"橙色|(?<![a-z])orange(?![a-z])|Ⅱ级|II级|二级", re.I), Level.orange),
    (re.compile(r"黄色|黃色|(?<![a-z])yellow(?![a-z])|Ⅲ级|III级|三级", re.I), Level.yellow),
    (re.compile(r"蓝色|藍色|(?<![a-z])blue(?![a-z])|Ⅳ级|IV级|四级", re.I), Level.blue),
]
_SHORT = {"红": Level.red, "紅": Level.red, "橙": Level.orange, "黄": Level.yellow, "黃": Level.yellow,
          "蓝": Level.blue, "藍": Level.blue}
_LEVEL_PARAMS = re.compile(r"level|colou?r|预警级别|預警級別|级别|等级|grade", re.I)
_SEVERITY = {"extreme": Level.red, "severe": Level.orange, "moderate": Level.yellow, "minor": Level.blue}


def level_from_text(*texts: str | None) -> Level | None:
    """The highest colour level named in any of the texts (None if none is)."""
    found = []
    for text in texts:
        if not text:
            continue
        t = text.strip()
        if t in _SHORT:
            found.append(_SHORT[t])
            continue
        found += [lv for pattern, lv in _WORDS if pattern.search(t)]
    return max_level(found)


class CapArea(BaseModel):
    desc: str
    geocodes: dict[str, list[str]] = Field(default_factory=dict)


class CapInfo(BaseModel):
    language: str | None = None
    category: list[str] = Field(default_factory=list)
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    sender_name: str | None = None
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    parameters: dict[str, list[str]] = Field(default_factory=dict)
    event_codes: dict[str, list[str]] = Field(default_factory=dict)
    areas: list[CapArea] = Field(default_factory=list)
    level: Level | None = None


class CapReference(BaseModel):
    sender: str
    identifier: str
    sent: str


class CapAlert(BaseModel):
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: list[CapReference] = Field(default_factory=list)
    infos: list[CapInfo] = Field(default_factory=list)
    level: Level | None = None
    headline: str | None = None
    event: str | None = None
    area_descs: list[str] = Field(default_factory=list)
    geocodes: list[str] = Field(default_factory=list)
    raw_sha256: str


@lru_cache(maxsize=1)
def _schema() -> xmlschema.XMLSchema:
    # use_fallback=False: never load well-known schemas (e.g. XML-DSig) from anywhere; `lax` content stays unchecked
    return xmlschema.XMLSchema(str(XSD), use_fallback=False)


def _check_depth(root: Element) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CapError("too_deep", f"CAP document nests deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in node)


def _text(node: Element | None, path: str) -> str | None:
    found = node.find(path, _NS) if node is not None else None
    return found.text.strip() if found is not None and found.text else None


def _pairs(node: Element, tag: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in node.findall(f"c:{tag}", _NS):
        name, value = _text(item, "c:valueName"), _text(item, "c:value")
        if name is not None and value is not None:
            out.setdefault(name, []).append(value)
    return out


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _info(node: Element) -> CapInfo:
    params = _pairs(node, "parameter")
    level = max_level(level_from_text(v) for k, vs in params.items() if _LEVEL_PARAMS.search(k) for v in vs)
    headline, event = _text(node, "c:headline"), _text(node, "c:event") or ""
    severity = _text(node, "c:severity") or "Unknown"
    level = level or level_from_text(headline, event) or _SEVERITY.get(severity.lower())
    areas = [CapArea(desc=_text(a, "c:areaDesc") or "", geocodes=_pairs(a, "geocode")) for a in node.findall("c:area", _NS)]
    return CapInfo(language=_text(node, "c:language"), category=[c.text or "" for c in node.findall("c:category", _NS)],
                   event=event, urgency=_text(node, "c:urgency") or "", severity=severity,
                   certainty=_text(node, "c:certainty") or "", headline=headline,
                   description=_text(node, "c:description"), instruction=_text(node, "c:instruction"),
                   sender_name=_text(node, "c:senderName"), effective=_time(_text(node, "c:effective")),
                   onset=_time(_text(node, "c:onset")), expires=_time(_text(node, "c:expires")), parameters=params,
                   event_codes=_pairs(node, "eventCode"), areas=areas, level=level)


def parse_cap(data: bytes) -> CapAlert:
    """Parse, validate and summarise a CAP 1.2 alert; raises CapError saying what is wrong."""
    if len(data) > MAX_CAP_BYTES:
        raise CapError("too_large", f"CAP document is {len(data)} bytes; the limit is {MAX_CAP_BYTES}")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CapError("forbidden_dtd", f"CAP document refused: DTDs, entities and external references are not allowed ({type(exc).__name__})") from exc
    except SafeET.ParseError as exc:
        raise CapError("not_xml", f"not a well-formed XML document: {exc}") from exc
    _check_depth(root)
    if root.tag != f"{{{CAP_NS}}}alert":
        ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else "(none)"
        raise CapError("wrong_namespace", f"not a CAP 1.2 alert: root element {root.tag.split('}')[-1]!r} in namespace {ns!r}; expected 'alert' in {CAP_NS!r}")
    errors = list(_schema().iter_errors(root))
    if errors:
        err = errors[0]
        plain = lambda t: re.sub(r"\{[^}]*\}", "", t or "")  # noqa: E731 - drop namespaces from the message
        raise CapError("schema_invalid", f"CAP document is not schema-valid: {plain(err.path) or '/alert'}: "
                                         f"{plain(err.reason or err.message)}")
    msg_type = _text(root, "c:msgType") or ""
    refs = []
    for ref in (_text(root, "c:references") or "").split():
        parts = ref.split(",")
        if len(parts) != 3:
            raise CapError("spec_invalid", f"reference {ref!r} is not sender,identifier,sent")
        refs.append(CapReference(sender=parts[0], identifier=parts[1], sent=parts[2]))
    if msg_type in ("Update", "Cancel", "Ack", "Error") and not refs:
        raise CapError("spec_invalid", f"a CAP {msg_type} must reference the alert it concerns (<references> is empty)")
    infos = [_info(n) for n in root.findall("c:info", _NS)]
    level = max_level(i.level for i in infos)
    top = [i for i in infos if i.level == level] or infos
    top.sort(key=lambda i: 0 if (i.language or "").lower().startswith("zh") else 1)
    area_descs, geocodes = [], []
    for info in infos:
        for area in info.areas:
            if area.desc and area.desc not in area_descs:
                area_descs.append(area.desc)
            geocodes += [v for vs in area.geocodes.values() for v in vs if v not in geocodes]
    return CapAlert(identifier=_text(root, "c:identifier") or "", sender=_text(root, "c:sender") or "",
                    sent=_time(_text(root, "c:sent")), status=_text(root, "c:status") or "", msg_type=msg_type,
                    scope=_text(root, "c:scope") or "", references=refs, infos=infos, level=level,
                    headline=top[0].headline if top else None, event=top[0].event if top else None,
                    area_descs=area_descs, geocodes=geocodes, raw_sha256=hashlib.sha256(data).hexdigest())
