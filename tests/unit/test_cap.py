"""CAP 1.2 parsing: every reference document, level derivation, and hostile input."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.cap import CapError, Level, level_from_text, parse_cap

CAP_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "cap"
VALID = sorted((CAP_DIR / "valid").glob("*.xml")) + sorted((CAP_DIR / "made").glob("*.xml"))
INVALID = {"invalid_missing_scope.xml": "schema_invalid", "invalid_wrong_namespace.xml": "wrong_namespace",
           "invalid_empty_references.xml": "spec_invalid"}


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_documents_parse(path: Path):
    alert = parse_cap(path.read_bytes())
    assert alert.identifier and alert.sender and alert.msg_type in ("Alert", "Update", "Cancel")
    if alert.msg_type in ("Update", "Cancel"):
        assert alert.references


@pytest.mark.parametrize("path", sorted((CAP_DIR / "invalid").glob("*.xml")), ids=lambda p: p.name)
def test_invalid_documents_are_refused_with_a_reason(path: Path):
    with pytest.raises(CapError) as exc:
        parse_cap(path.read_bytes())
    assert exc.value.reason == INVALID[path.name]
    assert str(exc.value)


def test_what_the_reference_documents_say():
    cancel = parse_cap((CAP_DIR / "valid" / "06_ipaws_athoc_cancel_signed_noinfo.xml").read_bytes())
    assert cancel.msg_type == "Cancel" and cancel.infos == [] and cancel.references[0].sender == "AtHoc"
    hurricane = parse_cap((CAP_DIR / "valid" / "05_noaa_nws_update_multipolygon.xml").read_bytes())
    assert hurricane.level == Level.red  # severity Extreme
    two = parse_cap((CAP_DIR / "made" / "rain_orange_two_towns.xml").read_bytes())
    assert two.level == Level.orange and two.geocodes == ["330110001", "330110002"] and two.event == "暴雨"


def test_several_infos_the_highest_level_wins():
    alert = parse_cap((CAP_DIR / "made" / "multi_info_highest_wins.xml").read_bytes())
    assert [i.level for i in alert.infos] == [Level.yellow, Level.red, Level.yellow]
    assert alert.level == Level.red and alert.event == "山洪"


@pytest.mark.parametrize("text, level", [
    ("暴雨橙色预警信号", Level.orange), ("暴雨紅色預警", Level.red), ("雷雨大风黄色预警", Level.yellow),
    ("寒潮藍色預警", Level.blue), ("Orange warning for heavy rain", Level.orange), ("RED ALERT", Level.red),
    ("Ⅱ级应急响应", Level.orange), ("红", Level.red), ("Redding area flood", None), ("no colour here", None),
    ("蓝色转橙色", Level.orange),
])
def test_level_from_text(text, level):
    assert level_from_text(text) == level


def test_severity_is_the_fallback():
    doc = (CAP_DIR / "made" / "gale_yellow.xml").read_text().replace("雷雨大风黄色预警信号", "雷雨大风预警")
    assert parse_cap(doc.replace("Moderate", "Severe").encode()).level == Level.orange


HEADER = '<?xml version="1.0"?>\n'


def test_xxe_is_refused_and_nothing_is_read():
    doc = (HEADER + '<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>')
    with pytest.raises(CapError) as exc:
        parse_cap(doc.encode())
    assert exc.value.reason == "forbidden_dtd" and "root:" not in str(exc.value)


def test_billion_laughs_is_refused_quickly():
    ents = '<!ENTITY lol "lol">' + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i else "")) * 10}">' for i in range(1, 10))
    doc = HEADER + f"<!DOCTYPE lolz [{ents}]><lolz>&lol9;</lolz>"
    t = time.monotonic()
    with pytest.raises(CapError) as exc:
        parse_cap(doc.encode())
    assert exc.value.reason == "forbidden_dtd" and time.monotonic() - t < 1


def test_oversized_documents_are_refused_before_parsing():
    big = b"<alert>" + b" " * 1_000_001 + b"</alert>"
    with pytest.raises(CapError) as exc:
        parse_cap(big)
    assert exc.value.reason == "too_large"


def test_deep_nesting_is_refused_quickly():
    doc = '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">' + "<a>" * 10000 + "</a>" * 10000 + "</alert>"
    t = time.monotonic()
    with pytest.raises(CapError) as exc:
        parse_cap(doc.encode())
    assert exc.value.reason in ("too_deep", "not_xml") and time.monotonic() - t < 2


@pytest.mark.parametrize("data", [b"", b"not xml at all", b"{\"json\": true}", b"<alert"])
def test_not_xml(data):
    with pytest.raises(CapError) as exc:
        parse_cap(data)
    assert exc.value.reason == "not_xml"
