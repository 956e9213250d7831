"""Load and validate a whole definitions folder.

Layout: ``positions.yaml`` (the catalogue), ``calendar.yaml`` (optional: the office's additions to the national
working calendar, definitions/schema/calendar.py), then one folder per kind
(``callout/``…), one definition per YAML file. Every error names the file, the
line, the path inside the document and the reason. A definition's version is the
SHA-256 of its file, so a running workflow keeps the snapshot it started with.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from definitions.schema.assessment import AssessmentRules
from definitions.schema.callout import CalloutPlan
from definitions.schema.common import Level
from definitions.schema.plans import ResponsePlan, cross_check_plans
from definitions.schema.duty import OPTIONAL_SECTIONS, SECTIONS, DutyFile, DutySettings
from definitions.schema.positions import PositionCatalogue
from definitions.schema.reporting import ReportingRules
from definitions.schema.review import ReviewTemplate
from definitions.schema.calendar import CalendarFile, WorkCalendar, national_calendar
from definitions.schema.templates import ProviderTemplates, template_errors
from definitions.schema.workorders import WorkOrderRules
from definitions.yamlsource import SourceError, YamlDocument, format_loc, yaml_syntax_error

# kind folder -> schema; later procedures add their kinds here
KINDS: dict[str, type[BaseModel]] = {"callout": CalloutPlan, "reporting": ReportingRules, "plans": ResponsePlan,
                                     "review": ReviewTemplate, "duty": DutyFile, "workorders": WorkOrderRules,
                                     "assessment": AssessmentRules, "gateways": ProviderTemplates}


@dataclass
class Loaded:
    model: Any
    version: str
    file: str


@dataclass
class Library:
    root: Path
    positions: PositionCatalogue | None = None
    calendar: CalendarFile | None = None  # calendar.yaml: the office's additions to the national working calendar
    items: dict[str, dict[str, Loaded]] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def work_calendar(self, years: list[int]) -> WorkCalendar:
        """The working calendar of `years`: national holidays and moved working days, with calendar.yaml's."""
        return national_calendar(years, self.calendar)

    def of(self, kind: str) -> dict[str, Loaded]:
        return self.items.get(kind, {})

    def callout_plan_for(self, event: str, level: Level | None = None, *, headline: str = "",
                         event_codes: dict[str, list[str]] | None = None) -> Loaded | None:
        """The call-out plan for a warning: the plan naming one of its CAP eventCodes; else the plan whose keyword
        is in its event; else in its headline (the hazard it ends with); else the default plan.

        The event decides before the headline: "山洪" with the headline "受强降雨影响…山洪灾害红色预警" is the
        flash-flood plan, not the heavy-rain one."""
        plans = list(self.of("callout").values())
        codes = {c for name, values in (event_codes or {}).items() for v in values for c in (v, f"{name}:{v}")}
        for loaded in plans:
            if codes & set(loaded.model.event_codes):
                return loaded
        found = _by_keyword(plans, event) or _by_keyword(plans, headline, last=True)
        if found is not None:
            return found
        return next((p for p in plans if p.model.default), None)

    def reporting_rules(self, rules_id: str | None = None) -> Loaded | None:
        """The named reporting rules, or the default ones."""
        items = self.of("reporting")
        if rules_id:
            return items.get(rules_id)
        return next((r for r in items.values() if r.model.default), None)

    def response_plan(self, plan_id: str) -> Loaded | None:
        """A response plan 应急预案 by id (definitions/plans/)."""
        return self.of("plans").get(plan_id)

    def callout_plan_of_keyword(self, keyword: str) -> str | None:
        """The call-out plan a warning whose event is `keyword` gets (by keyword only: no default)."""
        found = _by_keyword(list(self.of("callout").values()), keyword)
        return found.model.id if found else None

    def response_proposals(self, callout_plan: str, level: Level) -> list[tuple[Loaded, Any]]:
        """The response plans whose warning start condition (`on_warnings`) a warning meets, with the rule met:
        the warning's call-out plan (`callout_plan_for`) is the one a rule's keyword selects, at its level or
        higher (definitions/schema/plans.py `warning_rule`)."""
        out = []
        for loaded in self.of("plans").values():
            rule = loaded.model.warning_rule(self.callout_plan_of_keyword, callout_plan, level)
            if rule is not None:
                out.append((loaded, rule))
        return out

    def review_template(self, template_id: str | None = None) -> Loaded | None:
        """The named post-event review template, or the default one."""
        items = self.of("review")
        if template_id:
            return items.get(template_id)
        return next((r for r in items.values() if r.model.default), None)

    def workorder_rules(self, rules_id: str | None = None) -> Loaded | None:
        """The named work order rules (definitions/workorders/), or the default ones."""
        items = self.of("workorders")
        if rules_id:
            return items.get(rules_id)
        return next((r for r in items.values() if r.model.default), None)

    def assessment(self, rules_id: str | None = None) -> Loaded | None:
        """The named 考核 thresholds and weights (definitions/assessment/), or the default ones."""
        items = self.of("assessment")
        if rules_id:
            return items.get(rules_id)
        return next((r for r in items.values() if r.model.default), None)

    def templates(self, provider: str = "aliyun") -> Loaded | None:
        """A provider's approved templates (definitions/gateways/)."""
        return next((t for t in self.of("gateways").values() if t.model.provider == provider), None)

    def duty(self) -> DutySettings | None:
        """The duty day's sections (drills, spotcheck, handover, freshness) merged from duty/*.yaml."""
        found: dict[str, object] = {}
        versions: dict[str, str] = {}
        for loaded in self.of("duty").values():
            for section in loaded.model.sections():
                found.setdefault(section, getattr(loaded.model, section))
                versions.setdefault(section, loaded.version)
        if any(s not in found for s in SECTIONS):
            return None
        return DutySettings(**found, versions=versions)


def _by_keyword(plans: list[Loaded], text: str, last: bool = False) -> Loaded | None:
    """The plan with the longest keyword found in `text` (equally long: the one found first); with `last`, the
    keyword that ends last wins first: a headline names its cause first and the hazard warned of last
    (受强降雨影响…山洪灾害红色预警)."""
    text = (text or "").lower()
    hits = []
    for loaded in plans:
        for kw in loaded.model.events:
            at = text.rfind(kw.lower()) if last else text.find(kw.lower())
            if kw and at >= 0:
                hits.append(((-(at + len(kw)) if last else 0), -len(kw), at, loaded.model.id, loaded))
    return min(hits, key=lambda h: h[:4])[4] if hits else None


class DefinitionsInvalid(ValueError):
    def __init__(self, errors: list[SourceError]):
        self.errors = errors
        super().__init__("invalid definitions:\n" + "\n".join(str(e) for e in errors))


def _version(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def load_library(root: Path) -> Library:
    root = Path(root)
    lib = Library(root=root)
    if not root.is_dir():
        lib.errors.append(SourceError(str(root), None, "", "not a folder"))
        return lib
    pos_file = root / "positions.yaml"
    if pos_file.exists():
        lib.positions = _load_one(lib, pos_file, PositionCatalogue)
    else:
        lib.errors.append(SourceError(str(pos_file), None, "", "the position catalogue is missing"))
    if (root / "calendar.yaml").exists():
        lib.calendar = _load_one(lib, root / "calendar.yaml", CalendarFile)
    for kind, schema in KINDS.items():
        folder = root / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.y*ml")):
            model = _load_one(lib, path, schema)
            if model is None:
                continue
            ident = getattr(model, "id", path.stem)
            if ident in lib.items.setdefault(kind, {}):
                lib.errors.append(SourceError(str(path), None, "id", f"id {ident!r} is used by {lib.items[kind][ident].file} too"))
                continue
            lib.items[kind][ident] = Loaded(model, _version(path.read_bytes()), str(path))
    _cross_check(lib)
    lib.errors.extend(_cross_check_templates(lib))
    return lib


_cached: dict[str, tuple[tuple, Library]] = {}


def cached_library(root: Path) -> Library:
    """`load_library`, parsed again only when a file under `root` changed (name, mtime, size): what the API,
    the console and the feeds read per request or poll (parsing every definition takes a good part of a second
    and more on a slow machine; a stat of each file does not)."""
    root = Path(root)
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*.y*ml")))
    hit = _cached.get(str(root))
    if hit is None or hit[0] != stamp:
        hit = _cached[str(root)] = (stamp, load_library(root))
    return hit[1]


def _load_one(lib: Library, path: Path, schema: type[BaseModel]) -> Any:
    try:
        doc = YamlDocument.read(path)
    except yaml.YAMLError as exc:
        lib.errors.append(yaml_syntax_error(exc, str(path)))
        return None
    if not isinstance(doc.data, dict):
        lib.errors.append(SourceError(str(path), 1, "", "expected a mapping at the top of the document"))
        return None
    try:
        return schema.model_validate(doc.data)
    except ValidationError as exc:
        lib.errors.extend(doc.errors_from(exc))
        return None


def _cross_check(lib: Library) -> None:
    if lib.positions is None:
        return
    known = lib.positions.codes()
    for loaded in list(lib.of("callout").values()):
        plan: CalloutPlan = loaded.model
        doc = YamlDocument.read(Path(loaded.file))
        before = len(lib.errors)
        for i, tier in enumerate(plan.tiers):
            for j, code in enumerate(tier.positions):
                if code not in known:
                    lib.errors.append(SourceError(loaded.file, doc.line_of(["tiers", i, "positions", j]),
                                                  f"tiers[{i}].positions[{j}]", f"unknown position {code!r}"))
        for lvl in ("blue", "yellow"):
            for i, tier in enumerate(getattr(plan.publish, lvl).tiers if plan.publish and getattr(plan.publish, lvl) else []):
                for j, code in enumerate(tier.positions):
                    if code not in known:
                        where = ["publish", lvl, "tiers", i, "positions", j]
                        lib.errors.append(SourceError(loaded.file, doc.line_of(where),
                                                      f"publish.{lvl}.tiers[{i}].positions[{j}]", f"unknown position {code!r}"))
        for name, pol in plan.policies.items():
            for k, code in enumerate(sorted(pol.positions() - known)):
                lib.errors.append(SourceError(loaded.file, doc.line_of(["policies", name]), f"policies.{name}",
                                              f"unknown position {code!r}"))
        if len(lib.errors) > before:  # refused: a tier that names nobody must not run as if it were complete
            del lib.items["callout"][plan.id]
    _check_plan_choice(lib)
    defaults = [p for p in lib.of("callout").values() if p.model.default]
    if lib.of("callout") and len(defaults) != 1:
        lib.errors.append(SourceError(str(lib.root / "callout"), None, "", f"exactly one call-out plan is the default; found {len(defaults)}"))
    _cross_check_reporting(lib, known)
    lib.errors.extend(cross_check_plans(lib.of("plans"), known))
    _cross_check_warning_starts(lib)
    _cross_check_review(lib, known)
    _cross_check_duty(lib, known)
    _cross_check_workorders(lib, known)
    _cross_check_assessment(lib)


def _check_plan_choice(lib: Library) -> None:
    """A keyword or an event code selects one plan: the same one in two plans would make the choice a tie."""
    for key_field in ("events", "event_codes"):
        owner: dict[str, Loaded] = {}
        for loaded in lib.of("callout").values():
            doc = YamlDocument.read(Path(loaded.file))
            for i, word in enumerate(getattr(loaded.model, key_field)):
                key = word.lower()
                if key in owner and owner[key] is not loaded:
                    other = owner[key]
                    lib.errors.append(SourceError(loaded.file, doc.line_of([key_field, i]), f"{key_field}[{i}]",
                                                  f"{word!r} selects plan {other.model.id!r} ({other.file}) too: "
                                                  "a warning naming it would match both; keep it in one plan"))
                owner.setdefault(key, loaded)


def _cross_check_warning_starts(lib: Library) -> None:
    """Every keyword of a plan's `on_warnings` selects a call-out plan (the warning's plan choice), else the rule
    could never be met."""
    callout_broken = any(Path(e.file).parent.name == "callout" for e in lib.errors)
    for loaded in lib.of("plans").values():
        if not loaded.model.on_warnings:
            continue
        doc = YamlDocument.read(Path(loaded.file))
        for path, why in loaded.model.warning_start_errors():
            lib.errors.append(SourceError(loaded.file, doc.line_of(path), format_loc(path), why))
        if callout_broken:  # a call-out plan that failed to load is reported already; its keywords are unknown
            continue
        for i, rule in enumerate(loaded.model.on_warnings):
            for j, kw in enumerate(rule.events):
                if lib.callout_plan_of_keyword(kw) is None:
                    lib.errors.append(SourceError(loaded.file, doc.line_of(["on_warnings", i, "events", j]),
                                                  f"on_warnings[{i}].events[{j}]",
                                                  f"{kw!r} selects no call-out plan (definitions/callout/ events): "
                                                  "no warning would meet this start condition"))


def _cross_check_reporting(lib: Library, known: set[str]) -> None:
    for loaded in list(lib.of("reporting").values()):
        rules: ReportingRules = loaded.model
        doc = YamlDocument.read(Path(loaded.file))
        if rules.positions() - known:
            del lib.items["reporting"][rules.id]
        for code in sorted(rules.positions() - known):
            where = next(([k, n] for k in ("sector_leaders", "recipients", "city_lines", "triggers", "policies")
                          for n, v in _named(getattr(rules, k)) if code in str(v)), ["positions"])
            lib.errors.append(SourceError(loaded.file, doc.line_of(where), ".".join(str(p) for p in where),
                                          f"unknown position {code!r}"))
    defaults = [r for r in lib.of("reporting").values() if r.model.default]
    if lib.of("reporting") and len(defaults) != 1:
        lib.errors.append(SourceError(str(lib.root / "reporting"), None, "",
                                      f"exactly one set of reporting rules is the default; found {len(defaults)}"))


def _cross_check_review(lib: Library, known: set[str]) -> None:
    for loaded in lib.of("review").values():
        doc = YamlDocument.read(Path(loaded.file))
        for code in sorted(loaded.model.positions() - known):
            where = ["contact_positions"] if code in loaded.model.contact_positions else ["policies"]
            lib.errors.append(SourceError(loaded.file, doc.line_of(where), where[0], f"unknown position {code!r}"))
    defaults = [r for r in lib.of("review").values() if r.model.default]
    if lib.of("review") and len(defaults) != 1:
        lib.errors.append(SourceError(str(lib.root / "review"), None, "",
                                      f"exactly one review template is the default; found {len(defaults)}"))


def _cross_check_duty(lib: Library, known: set[str]) -> None:
    where: dict[str, list[str]] = {}
    for loaded in lib.of("duty").values():
        duty: DutyFile = loaded.model
        doc = YamlDocument.read(Path(loaded.file))
        for section in duty.sections():
            where.setdefault(section, []).append(loaded.file)
        for code in sorted(duty.positions() - known):
            section = next((s for s in duty.sections() if code in str(getattr(duty, s).model_dump())), duty.sections()[0])
            lib.errors.append(SourceError(loaded.file, doc.line_of([section]), section, f"unknown position {code!r}"))
    broken = any(Path(e.file).parent == lib.root / "duty" for e in lib.errors)
    if lib.of("duty") or broken:
        for section in SECTIONS:
            files = where.get(section, [])
            if len(files) > 1 or (not files and not broken):  # a file that failed to load has said why already
                lib.errors.append(SourceError(str(lib.root / "duty"), None, section,
                                              f"the duty section {section!r} appears in exactly one file; found "
                                              f"{len(files)}{': ' + ', '.join(files) if files else ''}"))
        for section in OPTIONAL_SECTIONS:
            files = where.get(section, [])
            if len(files) > 1:
                lib.errors.append(SourceError(str(lib.root / "duty"), None, section,
                                              f"the duty section {section!r} appears in at most one file; found "
                                              f"{len(files)}: {', '.join(files)}"))


def _cross_check_assessment(lib: Library) -> None:
    defaults = [r for r in lib.of("assessment").values() if r.model.default]
    if lib.of("assessment") and len(defaults) != 1:
        lib.errors.append(SourceError(str(lib.root / "assessment"), None, "",
                                      f"exactly one assessment file is the default; found {len(defaults)}"))


def _cross_check_workorders(lib: Library, known: set[str]) -> None:
    for loaded in list(lib.of("workorders").values()):
        doc = YamlDocument.read(Path(loaded.file))
        for code in sorted(loaded.model.positions() - known):
            where = ["contact_positions"] if code in loaded.model.contact_positions else ["policies"]
            lib.errors.append(SourceError(loaded.file, doc.line_of(where), where[0], f"unknown position {code!r}"))
    defaults = [r for r in lib.of("workorders").values() if r.model.default]
    if lib.of("workorders") and len(defaults) != 1:
        lib.errors.append(SourceError(str(lib.root / "workorders"), None, "",
                                      f"exactly one set of work order rules is the default; found {len(defaults)}"))


def _cross_check_templates(lib: Library, *, sms: bool = False, voice: bool = False) -> list[SourceError]:
    """The providers' templates: variables filled from values a kind has; with `sms`/`voice` (the Aliyun gateway
    on that channel) every message kind's template code too. Errors as file:line."""
    out = []
    loaded = lib.templates("aliyun")
    if loaded is None:
        if sms or voice:
            out.append(SourceError(str(lib.root / "gateways"), None, "", "the Aliyun gateway is configured and "
                                   "there is no file of its templates (provider: aliyun)"))
        return out
    doc = YamlDocument.read(Path(loaded.file))
    for where, why in template_errors(loaded.model, doc.line_of, sms=sms, voice=voice):
        out.append(SourceError(loaded.file, doc.line_of(where), format_loc(where), why))
    return out


def provider_errors(lib: Library, sms_gateway: str, voice_gateway: str) -> list[SourceError]:
    """What the configured providers refuse to send (`yingji definitions check`): with Aliyun on a channel, every
    message kind of that channel without an approved template code."""
    if not (sms_gateway == "aliyun" or voice_gateway == "aliyun"):
        return []
    return _cross_check_templates(lib, sms=sms_gateway == "aliyun", voice=voice_gateway == "aliyun")


def _named(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        return [(k, v.model_dump() if isinstance(v, BaseModel) else v) for k, v in value.items()]
    return [(i, v.model_dump() if isinstance(v, BaseModel) else v) for i, v in enumerate(value)]


def load_or_raise(root: Path) -> Library:
    lib = load_library(root)
    if not lib.ok:
        raise DefinitionsInvalid(lib.errors)
    return lib
