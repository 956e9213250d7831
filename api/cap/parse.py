"""CAP 1.2 parsing: safe, schema-validated, with the warning colour level derived.

Safety first: documents over 1 MB are refused before parsing; DTDs, entities and external
references are refused by defusedxml; nesting deeper than 32 levels or more than 10,000 elements is refused. The
document is then validated against the bundled OASIS schema (xmlschema, offline: the
schema imports nothing and location hints in documents are ignored), and the spec rules
the schema cannot express are checked (an Update/Cancel/Ack/Error references something;
identifiers and senders have no spaces or commas).

No I/O besides reading the bundled XSD once; no network, ever.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import xmlschema
from defusedxml import DefusedXmlException
from pydantic import BaseModel, Field

from definitions.schema.common import Level

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_CAP_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_ELEMENTS = 10_000  # a real alert has a few hundred; bounds the cost of validating a 1 MB document
XSD = Path(__file__).with_name("CAP-v1.2.xsd")
_NS = {"c": CAP_NS}


class CapError(ValueError):
    """A CAP document refused; str() says what is wrong, .reason is a short machine code."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


# ---------------------------------------------------------------------------- levels

# one Level for the whole system: the one the definitions use
LEVEL_ORDER = list(Level)


def max_level(levels: Iterable[Level | None]) -> Level | None:
    present = [lv for lv in levels if lv is not None]
    return max(present, key=lambda lv: lv.rank) if present else None


_CHARS = {"红": Level.red, "紅": Level.red, "橙": Level.orange, "黄": Level.yellow, "黃": Level.yellow,
          "蓝": Level.blue, "藍": Level.blue}
_EN = {"red": Level.red, "orange": Level.orange, "amber": Level.orange, "yellow": Level.yellow, "blue": Level.blue}
_GRADES = {"Ⅰ": Level.red, "I": Level.red, "一": Level.red, "Ⅱ": Level.orange, "II": Level.orange, "二": Level.orange,
           "Ⅲ": Level.yellow, "III": Level.yellow, "三": Level.yellow, "Ⅳ": Level.blue, "IV": Level.blue, "四": Level.blue}
_ZH_COLOUR = re.compile(r"([红紅橙黄黃蓝藍])色")
# an English colour counts when the text is just the colour, or it names a warning/alert/level
# ("Orange warning", "Yellow Wind Warning", "RED ALERT", "level red"), not "Red Deer" or "Red Flag Warning"
_COLOUR = r"red|orange|amber|yellow|blue"
_EN_COLOUR = re.compile(
    rf"\b(?:({_COLOUR})(?!\s+flag)(?=(?:[\s-]+[a-z]+){{0,3}}?[\s-]+(?:warnings?|alerts?|levels?|signals?|advisor(?:y|ies))\b|\s*$)"
    rf"|(?:level|code)\s+({_COLOUR})\b)", re.IGNORECASE)
# 应急/预警等级 Ⅰ–Ⅳ; not 十二级 (wind force), 统一级别, or the "I级" inside "III级"
_GRADE = re.compile(r"(?<![A-Za-z0-9十统])(Ⅰ|Ⅱ|Ⅲ|Ⅳ|III|II|IV|I|一|二|三|四)\s*[级級](?![别別])")
_LEVEL_PARAM = re.compile(r"level|colou?r|级别|級別|等级|等級|grade|sem[aá]foro", re.IGNORECASE)
_SEVERITY = {"extreme": Level.red, "severe": Level.orange, "moderate": Level.yellow, "minor": Level.blue}


def level_from_text(*texts: str | None) -> Level | None:
    """The highest warning level named in any of the texts, or None.

    Chinese colours 红/橙/黄/蓝色 (simplified and traditional), English colours naming a warning,
    and the grades Ⅰ–Ⅳ级 (Ⅰ = red … Ⅳ = blue). A text that is a single colour character ("红") counts too.
    """
    found: list[Level] = []
    for text in texts:
        t = (text or "").strip()
        if t in _CHARS:
            found.append(_CHARS[t])
            continue
        found += [_CHARS[c] for c in _ZH_COLOUR.findall(t)]
        found += [_EN[(a or b).lower()] for a, b in _EN_COLOUR.findall(t)]
        found += [_GRADES[g] for g in _GRADE.findall(t)]
    return max_level(found)


def _level_from_value(value: str) -> Level | None:
    """A level parameter's value: more lenient than free text ("橙", "紅色預警", "Orange", "II级")."""
    return max_level([level_from_text(value), *(_CHARS[c] for c in value if c in _CHARS)])


# ---------------------------------------------------------------------------- models

class CapArea(BaseModel):
    desc: str
    geocodes: dict[str, list[str]] = Field(default_factory=dict)  # valueName -> values


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
    msg_type: str  # Alert / Update / Cancel / Ack / Error
    scope: str
    references: list[CapReference] = Field(default_factory=list)
    infos: list[CapInfo] = Field(default_factory=list)
    level: Level | None = None  # the highest of the infos'
    headline: str | None = None  # of the info with the highest level, Chinese preferred
    event: str | None = None
    area_descs: list[str] = Field(default_factory=list)  # union over all infos' areas
    geocodes: list[str] = Field(default_factory=list)  # every geocode value, in order, once
    raw_sha256: str


# ---------------------------------------------------------------------------- parsing

@lru_cache(maxsize=1)
def _schema() -> xmlschema.XMLSchema:
    # The CAP schema imports nothing. use_fallback=False: never load well-known schemas (e.g. XML-DSig)
    # for the `lax` ds:Signature wildcard; allow="local": no URL is ever opened.
    return xmlschema.XMLSchema(str(XSD), use_fallback=False, allow="local", defuse="always")


_DECL_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?\bencoding\s*=\s*["'])([A-Za-z0-9._-]+)(["'])""")
_EXPAT_ENCODINGS = {"utf-8", "utf8", "utf-16", "utf16", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}


def _to_utf8(data: bytes) -> bytes:
    """Expat reads only UTF-8/16, ASCII and Latin-1: recode e.g. GB2312/GBK/GB18030/Big5 to UTF-8."""
    m = _DECL_ENCODING.match(data[:200].decode("latin-1"))
    if not m or m.group(2).lower() in _EXPAT_ENCODINGS:
        return data
    enc = m.group(2)
    try:
        text = data.decode(enc)
    except LookupError:
        raise CapError("not_xml", f"the XML declaration names an unknown character encoding {enc!r}") from None
    except UnicodeDecodeError as exc:
        raise CapError("not_xml", f"the document is not valid {enc}: {exc.reason} at byte {exc.start}") from None
    return _DECL_ENCODING.sub(r"\g<1>UTF-8\g<3>", text, count=1).encode("utf-8")


def _parse(data: bytes) -> Element:
    """Parse incrementally, stopping as soon as the document nests too deep or has too many elements."""
    root, depth, count = None, 0, 0
    events = SafeET.iterparse(io.BytesIO(_to_utf8(data)), events=("start", "end"),
                              forbid_dtd=True, forbid_entities=True, forbid_external=True)
    for event, elem in events:
        if event == "end":
            depth -= 1
            continue
        root, depth, count = root if root is not None else elem, depth + 1, count + 1
        if depth > MAX_DEPTH:
            raise CapError("too_deep", f"CAP document nests deeper than {MAX_DEPTH} levels")
        if count > MAX_ELEMENTS:
            raise CapError("too_large", f"CAP document has more than {MAX_ELEMENTS} elements")
    if root is None:
        raise CapError("not_xml", "not an XML document: no root element")
    return root


def _local(tag: str | None) -> str:
    return re.sub(r"\{[^}]*\}|^\w+:", "", tag or "")


def _schema_message(err: xmlschema.XMLSchemaValidationError) -> str:
    path = "/".join(_local(p) for p in (err.path or "/alert").split("/"))
    expected = getattr(err, "expected", None)
    invalid = getattr(err, "invalid_tag", None)
    if expected:
        names = [_local(getattr(e, "name", None) or str(e)) for e in expected]
        present = any(_local(child.tag) in names for child in err.obj) if isinstance(err.obj, Element) else False
        what = "is out of order" if present else "is missing"
        found = f" (found {_local(invalid)!r} instead)" if invalid else ""
        return f"{path}: required element {' or '.join(map(repr, names))} {what}{found}"
    if invalid:
        return f"{path}: unexpected element {_local(invalid)!r}"
    if isinstance(err.obj, str):
        return f"{path}: value {err.obj!r} is not allowed: {err.reason}"
    return f"{path}: {_local(err.reason or err.message)}"


def _text(node: Element | None, path: str) -> str | None:
    found = node.find(path, _NS) if node is not None else None
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _pairs(node: Element, tag: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in node.findall(f"c:{tag}", _NS):
        name, value = _text(item, "c:valueName"), _text(item, "c:value")
        if name is not None and value is not None:
            out.setdefault(name, []).append(value)
    return out


def _time(value: str | None, what: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        raise CapError("spec_invalid", f"<{what}> {value!r} is not a valid date-time") from None


def _info(node: Element) -> CapInfo:
    params = _pairs(node, "parameter")
    headline, event = _text(node, "c:headline"), _text(node, "c:event") or ""
    severity = _text(node, "c:severity") or "Unknown"
    level = (max_level(_level_from_value(v) for k, vs in params.items() if _LEVEL_PARAM.search(k) for v in vs)
             or level_from_text(headline, event)
             or _SEVERITY.get(severity.lower()))
    areas = [CapArea(desc=_text(a, "c:areaDesc") or "", geocodes=_pairs(a, "geocode"))
             for a in node.findall("c:area", _NS)]
    return CapInfo(
        language=_text(node, "c:language"), category=[(c.text or "").strip() for c in node.findall("c:category", _NS)],
        event=event, urgency=_text(node, "c:urgency") or "", severity=severity, certainty=_text(node, "c:certainty") or "",
        headline=headline, description=_text(node, "c:description"), instruction=_text(node, "c:instruction"),
        sender_name=_text(node, "c:senderName"), effective=_time(_text(node, "c:effective"), "effective"),
        onset=_time(_text(node, "c:onset"), "onset"), expires=_time(_text(node, "c:expires"), "expires"),
        parameters=params, event_codes=_pairs(node, "eventCode"), areas=areas, level=level)


def _references(root: Element, msg_type: str) -> list[CapReference]:
    refs = []
    for ref in (_text(root, "c:references") or "").split():
        parts = ref.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError("spec_invalid", f"<references> entry {ref!r} is not 'sender,identifier,sent'")
        refs.append(CapReference(sender=parts[0], identifier=parts[1], sent=parts[2]))
    if msg_type in ("Update", "Cancel", "Ack", "Error") and not refs:
        raise CapError("spec_invalid", f"a CAP {msg_type} must name the alert(s) it concerns in <references>, which is empty")
    return refs


def parse_cap(data: bytes) -> CapAlert:
    """Parse, validate and summarise a CAP 1.2 alert; raises CapError saying what is wrong."""
    if len(data) > MAX_CAP_BYTES:
        raise CapError("too_large", f"CAP document is {len(data)} bytes; the limit is {MAX_CAP_BYTES}")
    try:
        root = _parse(data)
    except CapError:
        raise
    except DefusedXmlException as exc:  # before ValueError: it is one
        raise CapError("forbidden_dtd", "CAP document refused: DTDs (<!DOCTYPE>), entities and external "
                                        f"references are not allowed ({type(exc).__name__})") from None
    except SafeET.ParseError as exc:
        raise CapError("not_xml", f"not a well-formed XML document: {exc}") from None
    except (ValueError, LookupError) as exc:  # e.g. an encoding expat cannot read
        raise CapError("not_xml", f"not a readable XML document: {exc}") from None
    if root.tag != f"{{{CAP_NS}}}alert":
        ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else "(none)"
        raise CapError("wrong_namespace", f"not a CAP 1.2 alert: root element {_local(root.tag)!r} is in namespace "
                                          f"{ns!r}; expected 'alert' in {CAP_NS!r}")
    err = next(_schema().iter_errors(root, use_location_hints=False), None)
    if err is not None:
        raise CapError("schema_invalid", f"CAP document is not schema-valid: {_schema_message(err)}")

    identifier, sender = _text(root, "c:identifier") or "", _text(root, "c:sender") or ""
    for name, value in (("identifier", identifier), ("sender", sender)):
        if re.search(r"[\s,<&]", value):
            raise CapError("spec_invalid", f"<{name}> {value!r} must not contain spaces, commas, '<' or '&'")
    msg_type = _text(root, "c:msgType") or ""
    refs = _references(root, msg_type)
    infos = [_info(n) for n in root.findall("c:info", _NS)]
    level = max_level(i.level for i in infos)
    top = sorted((i for i in infos if i.level == level),
                 key=lambda i: 0 if (i.language or "").lower().startswith("zh") else 1)
    areas = [a for i in infos for a in i.areas]
    area_descs = list(dict.fromkeys(a.desc for a in areas if a.desc))  # in order, once each
    geocodes = list(dict.fromkeys(v for a in areas for vs in a.geocodes.values() for v in vs))
    return CapAlert(
        identifier=identifier, sender=sender, sent=_time(_text(root, "c:sent"), "sent"),
        status=_text(root, "c:status") or "", msg_type=msg_type, scope=_text(root, "c:scope") or "",
        references=refs, infos=infos, level=level, headline=top[0].headline if top else None,
        event=top[0].event if top else None, area_descs=area_descs, geocodes=geocodes,
        raw_sha256=hashlib.sha256(data).hexdigest())
