"""CAP 1.2 parsing: every reference document, level derivation, and hostile input."""
from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from api.cap import (
    MAX_CAP_BYTES,
    CapError,
    Level,
    level_from_text,
    max_level,
    parse_cap,
)

CAP_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "cap"
VALID = sorted((CAP_DIR / "valid").glob("*.xml")) + sorted((CAP_DIR / "made").glob("*.xml"))
INVALID = sorted((CAP_DIR / "invalid").glob("*.xml"))
INVALID_REASONS = {"invalid_missing_scope.xml": "schema_invalid", "invalid_wrong_namespace.xml": "wrong_namespace",
                   "invalid_empty_references.xml": "spec_invalid"}
NS = "urn:oasis:names:tc:emergency:cap:1.2"


def cap(*infos: str, msg_type: str = "Alert", refs: str = "", identifier: str = "t-1", prolog: str = "") -> bytes:
    """A minimal schema-valid alert around the given <info> bodies."""
    body = "".join(f"<info>{i}</info>" for i in infos)
    ref = f"<references>{refs}</references>" if refs else ""
    return (f'{prolog}<alert xmlns="{NS}"><identifier>{identifier}</identifier><sender>s@example.cn</sender>'
            f"<sent>2026-07-01T03:10:00+08:00</sent><status>Actual</status><msgType>{msg_type}</msgType>"
            f"<scope>Public</scope>{ref}{body}</alert>").encode()


def info(event: str = "暴雨", severity: str = "Unknown", headline: str = "", params: dict | None = None,
         language: str = "zh-CN") -> str:
    lang = f"<language>{language}</language>" if language else ""
    head = f"<headline>{headline}</headline>" if headline else ""
    par = "".join(f"<parameter><valueName>{k}</valueName><value>{v}</value></parameter>" for k, v in (params or {}).items())
    return (f"{lang}<category>Met</category><event>{event}</event><urgency>Immediate</urgency>"
            f"<severity>{severity}</severity><certainty>Likely</certainty>{head}{par}<area><areaDesc>第1街道</areaDesc></area>")


def refused(data: bytes) -> CapError:
    with pytest.raises(CapError) as exc:
        parse_cap(data)
    assert str(exc.value)
    return exc.value


# ---------------------------------------------------------------------------- every fixture

@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_valid_document_parses(path: Path):
    alert = parse_cap(path.read_bytes())
    assert alert.identifier and alert.sender and alert.sent.tzinfo is not None
    assert alert.msg_type in ("Alert", "Update", "Cancel", "Ack", "Error")
    if alert.msg_type != "Alert":
        assert alert.references
    assert alert.level == max_level(i.level for i in alert.infos)
    assert len(alert.raw_sha256) == 64


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_invalid_document_is_refused_with_its_reason(path: Path):
    assert path.name in INVALID_REASONS, f"new invalid fixture {path.name}: add the reason it must be refused with"
    assert refused(path.read_bytes()).reason == INVALID_REASONS[path.name]


def test_refusals_say_what_is_wrong():
    assert "'scope' is missing" in str(refused((CAP_DIR / "invalid" / "invalid_missing_scope.xml").read_bytes()))
    assert "urn:oasis:names:tc:emergency:alerts:1.2" in str(refused((CAP_DIR / "invalid" / "invalid_wrong_namespace.xml").read_bytes()))
    assert "<references>" in str(refused((CAP_DIR / "invalid" / "invalid_empty_references.xml").read_bytes()))
    err = refused(cap(info(severity="Huge")))
    assert err.reason == "schema_invalid" and "/alert/info/severity" in str(err) and "'Huge'" in str(err)


def test_what_the_reference_documents_say():
    def load(name):
        return parse_cap((CAP_DIR / "valid" / name).read_bytes())
    cancel = load("06_ipaws_athoc_cancel_signed_noinfo.xml")  # ds:Signature passes the lax wildcard offline
    assert cancel.msg_type == "Cancel" and cancel.infos == [] and cancel.level is None and cancel.headline is None
    assert cancel.references[0].sender == "AtHoc"
    assert [r.identifier for r in load("01_envcanada_update_en_fr_polygons.xml").references] and \
        len(load("01_envcanada_update_en_fr_polygons.xml").references) == 2
    assert load("04_iceland_imo_alert_is_en_polygons.xml").level == Level.yellow  # parameter Color=Yellow
    assert load("05_noaa_nws_update_multipolygon.xml").level == Level.red  # severity Extreme
    assert load("07_mexico_update_es419_polygon.xml").level == Level.red  # parameter semáforo=red, severity Unknown
    tsunami = load("08_wcatwc_tsunami_update.xml")
    assert tsunami.infos[0].language is None and tsunami.headline


@pytest.mark.parametrize("name, msg_type, level, event, geocodes, refs", [
    ("rain_orange_two_towns.xml", "Alert", Level.orange, "暴雨", ["330110001", "330110002"], []),
    ("rain_red_whole_district.xml", "Alert", Level.red, "暴雨", ["330110"], []),
    ("gale_yellow.xml", "Alert", Level.yellow, "雷雨大风", ["330110003"], []),
    ("rain_update_to_red.xml", "Update", Level.red, "暴雨", ["330110001", "330110002"], ["qx-rain-orange-1"]),
    ("rain_cancel.xml", "Cancel", Level.orange, "暴雨", ["330110001", "330110002"], ["qx-rain-orange-1"]),
    ("multi_info_highest_wins.xml", "Alert", Level.red, "山洪", ["330110002"], []),
    ("typhoon_traditional_red.xml", "Alert", Level.red, "颱風", [], []),
])
def test_the_made_up_chinese_alerts(name, msg_type, level, event, geocodes, refs):
    alert = parse_cap((CAP_DIR / "made" / name).read_bytes())
    assert (alert.msg_type, alert.level, alert.event, alert.geocodes) == (msg_type, level, event, geocodes)
    assert [r.identifier for r in alert.references] == refs


# ---------------------------------------------------------------------------- levels

def test_level_order_and_labels():
    assert [lv.rank for lv in (Level.blue, Level.yellow, Level.orange, Level.red)] == [0, 1, 2, 3]
    assert [lv.zh for lv in Level] == ["蓝色", "黄色", "橙色", "红色"]
    assert max_level([None, Level.yellow, Level.red, Level.blue]) == Level.red and max_level([None]) is None


@pytest.mark.parametrize("text, level", [
    ("暴雨橙色预警信号", Level.orange), ("雷雨大风黄色预警", Level.yellow), ("寒潮蓝色预警", Level.blue),
    ("暴雨紅色預警", Level.red), ("大風黃色預警", Level.yellow), ("寒潮藍色預警", Level.blue), ("颱風橙色預警", Level.orange),
    ("红", Level.red), ("紅", Level.red), ("黃", Level.yellow),
    ("Orange warning for heavy rain", Level.orange), ("Yellow Wind Warning", Level.yellow), ("RED ALERT", Level.red),
    ("orange", Level.orange), ("Amber warning of rain", Level.orange), ("warning level red", Level.red),
    ("Ⅰ级应急响应", Level.red), ("I级", Level.red), ("一级响应", Level.red), ("Ⅱ级", Level.orange), ("II级预警", Level.orange),
    ("二级", Level.orange), ("Ⅲ级", Level.yellow), ("III级", Level.yellow), ("三级", Level.yellow), ("Ⅳ级", Level.blue),
    ("IV级", Level.blue), ("四級", Level.blue),
    ("蓝色预警升级为橙色", Level.orange),
    ("Redding area flood", None), ("Red Deer county", None), ("Red Flag Warning", None), ("Blue Mountains", None),
    ("风力可达十二级", None), ("统一级别", None), ("暴雨预警", None), ("红旗镇", None), ("", None), (None, None),
])
def test_level_from_text(text, level):
    assert level_from_text(text) == level


def test_level_from_text_takes_the_highest_of_several_texts():
    assert level_from_text("暴雨黄色预警", None, "Red warning") == Level.red


@pytest.mark.parametrize("params, headline, severity, level", [
    ({"预警级别": "橙色"}, "", "Minor", Level.orange),  # parameter beats severity
    ({"预警级别": "蓝色"}, "暴雨红色预警", "Extreme", Level.blue),  # parameter beats headline and severity
    ({"預警級別": "紅"}, "", "Unknown", Level.red),
    ({"warningLevel": "Yellow"}, "", "Unknown", Level.yellow),
    ({"ColorLevel": "ORANGE"}, "", "Unknown", Level.orange),
    ({"colour": "red"}, "", "Unknown", Level.red),
    ({"severityLevel": "Ⅱ级"}, "", "Unknown", Level.orange),
    ({"level": "三级"}, "", "Unknown", Level.yellow),
    ({"FireDangerClass": "1", "Location": "Red Deer"}, "", "Minor", Level.blue),  # not level parameters
    ({}, "暴雨橙色预警信号", "Minor", Level.orange),  # headline beats severity
    ({}, "", "Extreme", Level.red), ({}, "", "Severe", Level.orange), ({}, "", "Moderate", Level.yellow),
    ({}, "", "Minor", Level.blue), ({}, "", "Unknown", None),
])
def test_level_derivation_parameters_then_text_then_severity(params, headline, severity, level):
    assert parse_cap(cap(info(params=params, headline=headline, severity=severity))).level == level


def test_the_event_text_counts_when_the_headline_does_not():
    assert parse_cap(cap(info(event="暴雨橙色预警", severity="Minor"))).level == Level.orange


def test_several_infos_the_highest_level_wins():
    alert = parse_cap((CAP_DIR / "made" / "multi_info_highest_wins.xml").read_bytes())
    assert [i.level for i in alert.infos] == [Level.yellow, Level.red, Level.yellow]
    assert alert.level == Level.red and alert.event == "山洪" and alert.headline == "山洪灾害红色预警"
    assert alert.area_descs == ["第1街道", "第2街道", "Street 1"]


def test_of_equal_levels_the_chinese_headline_is_preferred():
    alert = parse_cap(cap(info(event="Rain", headline="Red rain warning", language="en-US"),
                          info(event="暴雨", headline="暴雨红色预警"), info(event="大风", headline="大风黄色预警")))
    assert alert.level == Level.red and (alert.headline, alert.event) == ("暴雨红色预警", "暴雨")


# ---------------------------------------------------------------------------- spec rules and encodings

@pytest.mark.parametrize("msg_type", ["Update", "Cancel", "Ack", "Error"])
def test_replies_without_references_are_refused(msg_type):
    assert refused(cap(info(), msg_type=msg_type)).reason == "spec_invalid"


def test_references_are_parsed_and_malformed_ones_refused():
    alert = parse_cap(cap(msg_type="Cancel", refs="a@x,id-1,2026-07-01T03:10:00+08:00 a@x,id-2,2026-07-01T04:10:00+08:00"))
    assert [(r.sender, r.identifier, r.sent) for r in alert.references] == [
        ("a@x", "id-1", "2026-07-01T03:10:00+08:00"), ("a@x", "id-2", "2026-07-01T04:10:00+08:00")]
    assert refused(cap(msg_type="Cancel", refs="a@x,id-1")).reason == "spec_invalid"


def test_identifiers_with_spaces_or_commas_are_refused():
    assert refused(cap(info(), identifier="two words")).reason == "spec_invalid"
    assert refused(cap(info(), identifier="a,b")).reason == "spec_invalid"


def test_chinese_legacy_encodings_are_read():
    for enc in ("GB2312", "GBK", "GB18030", "Big5"):
        doc = cap(info(headline="暴雨橙色预警信号" if enc != "Big5" else "颱風紅色預警"),
                  prolog=f'<?xml version="1.0" encoding="{enc}"?>\n').decode().encode(enc)
        assert parse_cap(doc).level in (Level.orange, Level.red), enc
    assert parse_cap(b"\xef\xbb\xbf" + cap(info(headline="暴雨红色预警"))).level == Level.red  # UTF-8 with BOM
    assert refused(cap(prolog='<?xml version="1.0" encoding="klingon"?>')).reason == "not_xml"
    assert refused('<?xml version="1.0" encoding="GB2312"?><alert>暴雨</alert>'.encode()).reason == "not_xml"


# ---------------------------------------------------------------------------- hostile input

HEADER = '<?xml version="1.0"?>\n'


def test_xxe_is_refused_and_nothing_is_read():
    secret = Path("/etc/passwd").read_text().splitlines()[0] if Path("/etc/passwd").exists() else "root:x:0:0"
    doc = (HEADER + '<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           f'<alert xmlns="{NS}"><identifier>&xxe;</identifier></alert>')
    err = refused(doc.encode())
    assert err.reason == "forbidden_dtd" and secret not in str(err) and "root:" not in str(err)
    assert "DTD" in str(err)


def test_external_dtd_and_parameter_entities_are_refused():
    assert refused((HEADER + '<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/x.dtd"><alert/>').encode()).reason == "forbidden_dtd"
    doc = HEADER + '<!DOCTYPE alert [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><alert/>'
    assert refused(doc.encode()).reason == "forbidden_dtd"


# How fast each hostile document is refused is measured by bench/hostile_input.py, not asserted here.


def test_billion_laughs_is_refused_without_expanding():
    ents = '<!ENTITY lol0 "lol">' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    doc = HEADER + f"<!DOCTYPE lolz [{ents}]><lolz>&lol9;</lolz>"
    err = refused(doc.encode())
    assert err.reason == "forbidden_dtd" and "lol" not in str(err)


def test_oversized_documents_are_refused_before_parsing():
    assert refused(b"<" * (MAX_CAP_BYTES + 1)).reason == "too_large"  # not even XML: size is checked first
    padded = cap(info(headline="暴雨橙色预警")).replace(b"</alert>", b" " * (MAX_CAP_BYTES + 1) + b"</alert>")
    assert refused(padded).reason == "too_large"


def test_too_many_elements_are_refused():
    doc = cap(info()).replace(b"</alert>", b"<x/>" * 200_000 + b"</alert>")
    err = refused(doc)
    assert err.reason == "too_large" and "elements" in str(err)


def test_deep_nesting_is_refused():
    doc = f'<alert xmlns="{NS}">' + "<a>" * 10_000 + "</a>" * 10_000 + "</alert>"
    err = refused(doc.encode())
    assert err.reason == "too_deep"


def test_just_under_the_depth_limit_is_a_schema_matter_not_a_depth_one():
    doc = f'<alert xmlns="{NS}">' + "<a>" * 20 + "</a>" * 20 + "</alert>"
    assert refused(doc.encode()).reason == "schema_invalid"


@pytest.mark.parametrize("data", [b"", b"   ", b"not xml at all", b'{"json": true}', b"<alert", b"<a></b>",
                                  "暴雨红色预警".encode(), b"\x00\xff\xfe garbage"])
def test_not_xml(data):
    assert refused(data).reason == "not_xml"


def test_other_xml_is_the_wrong_namespace():
    assert refused(b"<alert><identifier>x</identifier></alert>").reason == "wrong_namespace"
    assert refused(b'<rss version="2.0"><channel/></rss>').reason == "wrong_namespace"
    assert refused(b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"/>').reason == "wrong_namespace"


def test_schema_location_hints_are_never_fetched():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        doc = (CAP_DIR / "valid" / "06_ipaws_athoc_cancel_signed_noinfo.xml").read_text()
        doc = doc.replace(f'<alert xmlns="{NS}">', f'<alert xmlns="{NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                                                   f'xsi:schemaLocation="{NS} {url}/cap.xsd">', 1)
        doc = doc.replace("<Signature:Signature ", '<Signature:Signature xsi:schemaLocation="http://www.w3.org/2000/09/xmldsig# '
                                                   f'{url}/dsig.xsd" ', 1)
        assert parse_cap(doc.encode()).msg_type == "Cancel"
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
