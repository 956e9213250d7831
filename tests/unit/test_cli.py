"""The `yingji` command line: definitions check, config, audit verify, token create."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


# ------------------------------------------------------------------ definitions check


def test_definitions_check_passes_on_the_shipped_library():
    result = invoke("definitions", "check", str(ROOT / "definitions"))
    assert result.exit_code == 0, result.output
    assert "heavy_rain" in result.output
    assert re.search(r"[0-9a-f]{16}", result.output), "versions (content hashes) are listed"


def test_definitions_check_default_dir_is_the_settings_one(monkeypatch):
    from config import get_settings

    monkeypatch.delenv("YINGJI_DEFINITIONS_DIR", raising=False)
    get_settings.cache_clear()
    try:
        result = invoke("definitions", "check")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_definitions_check_names_file_line_path_and_reason(tmp_path):
    lib = tmp_path / "definitions"
    shutil.copytree(ROOT / "definitions", lib)
    plan = lib / "callout" / "heavy_rain.yaml"
    source = plan.read_text(encoding="utf-8")
    assert "wait_ack: 10m" in source and "\nmin_level: orange\n" in source
    source = source.replace("wait_ack: 10m", "wait_ack: 10x", 1)
    source = source.replace("\nmin_level: orange\n", "\nmin_level: orange\ncolour: red\n", 1)
    plan.write_text(source, encoding="utf-8")

    result = invoke("definitions", "check", str(lib))
    assert result.exit_code == 1, result.output
    out = result.output
    duration_line = _line_of(plan, "wait_ack: 10x")
    extra_line = _line_of(plan, "colour: red")
    assert f"{plan}:{duration_line}: policies.standard.steps[1].wait_ack: " in out, out
    assert "'10x' is not a duration" in out
    assert f"{plan}:{extra_line}: colour: " in out, out
    assert "Extra inputs are not permitted" in out or "extra" in out.lower()
    assert "2 errors" in out


def test_definitions_check_on_a_missing_folder_fails(tmp_path):
    result = invoke("definitions", "check", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "not a folder" in result.output


# ------------------------------------------------------------------ config


def test_config_masks_secrets(monkeypatch, tmp_path):
    from config import get_settings

    secret = "adm-" + "s3cr3t-value-that-must-not-show"
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", secret)
    monkeypatch.setenv("YINGJI_TWILIO_AUTH_TOKEN", "twilio-secret-value")
    monkeypatch.setenv("YINGJI_DATABASE_URL", "postgresql+psycopg://yingji:pg-password-123@db:5432/yingji")
    monkeypatch.setenv("YINGJI_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config"], env={"COLUMNS": "200"}, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    out = result.output
    assert secret not in out
    assert "twilio-secret-value" not in out
    assert "pg-password-123" not in out
    assert "********" in out
    assert "YINGJI_ADMIN_TOKEN" in out
    assert "db:5432/yingji" in out


# ------------------------------------------------------------------ audit verify


def _three_events(subject: str = "warning:test-1") -> list[int]:
    from store.audit import NewEvent, append
    from store.db import session_scope

    with session_scope() as session:
        rows = append(session, [NewEvent(subject=subject, kind="callout.sent", step_id=f"s{i}", workflow_id="wf-1",
                                         payload={"n": i, "text": "叫应"}) for i in range(1, 4)])
        return [r.seq for r in rows]


def _execute(sql: str, **params) -> None:
    from store.db import get_engine

    with get_engine(write=True).begin() as conn:
        conn.execute(text(sql), params)


def test_audit_verify_ok(db_url):
    _three_events()
    result = invoke("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "3 events" in result.output


def test_audit_verify_names_the_edited_event(db_url):
    seqs = _three_events()
    _execute("UPDATE audit_event SET payload = :p WHERE seq = :s", p='{"n": 99, "text": "叫应"}', s=seqs[1])
    result = invoke("audit", "verify")
    assert result.exit_code == 1, result.output
    assert f"first bad sequence number {seqs[1]} " in result.output, result.output
    assert "edited" in result.output
    # the same with --subject
    result = invoke("audit", "verify", "--subject", "warning:test-1")
    assert result.exit_code == 1
    assert f"first bad sequence number {seqs[1]} " in result.output


def test_audit_verify_names_the_event_after_a_deleted_one(db_url):
    seqs = _three_events()
    _execute("DELETE FROM audit_event WHERE seq = :s", s=seqs[1])
    result = invoke("audit", "verify")
    assert result.exit_code == 1, result.output
    assert f"first bad sequence number {seqs[2]} " in result.output, result.output
    assert "deleted" in result.output


# ------------------------------------------------------------------ token create


def test_token_create_stores_only_a_hash(db_url):
    from sqlmodel import Session, select

    from store.auth import ApiToken, hash_token
    from store.db import dispose_all, get_engine

    result = invoke("token", "create", "--role", "supervisor", "--label", "audit office")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("yj_") and len(token) > 30
    with Session(get_engine()) as s:
        row = s.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
        assert (row.role, row.label) == ("supervisor", "audit office")
        from store.audit import AuditEvent

        made = s.exec(select(AuditEvent).where(AuditEvent.subject == "access")).one()  # in the audit trail
        assert made.kind == "access.token.created" and made.payload["token_id"] == row.id and made.channel == "cli"
    dispose_all()  # checkpoint the WAL into the file, then look at every byte
    db_file = Path(db_url.split("///", 1)[1])
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert token.encode() not in raw
    assert hash_token(token).encode() in raw


def test_token_create_rejects_an_unknown_role(db_url):
    result = invoke("token", "create", "--role", "emperor")
    assert result.exit_code == 2
    assert "unknown role" in result.output


def test_token_create_rejects_an_unknown_person(db_url):
    result = invoke("token", "create", "--role", "duty_staff", "--person", "nobody-here")
    assert result.exit_code == 2
    assert "unknown person" in result.output


@pytest.mark.parametrize("args", [["--help"], ["definitions", "--help"], ["audit", "--help"], ["token", "--help"]])
def test_help(args):
    assert invoke(*args).exit_code == 0
