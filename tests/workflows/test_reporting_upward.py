"""上报: the duty office's verbal and written reports reach the city platform (a local fake over real HTTP) through
the city line, signed; its receipt comes back to the signed webhook; a major event goes to the province too; a
platform down after the retries gets the report by SMS instead; a retried activity posts once; a receipt that
comes before the report is recorded sent (the platform signs before we hear it took the post) is recorded right
after `report.city.sent`, once. On the time-skipping server with the real activities and database."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from temporalio.worker import Worker

from activities.gateways import reset_gateways
from api.app import create_app
from api.services.incidents import incident_detail
from config import get_settings
from definitions.schema.reporting import Severity
from store.audit import verify
from store.db import session_scope
from tests.factories import small_district
from tests.fakes.city_platform import FakeCityPlatform
from tests.workflows.callout_helpers import idle, wait_for
from tests.workflows.reporting_helpers import draft, events, incident_input, outbox, start, terminate_incidents
from worker import build_worker
from workflows.reporting import DraftIn, IncidentReportingWorkflow as W, ReviewIn, SubmitIn, VerbalIn

HOOK = "/api/webhooks/cityline"


@pytest.fixture
def platform(monkeypatch, db_url):
    with FakeCityPlatform() as fake:
        for name, value in {"CITYLINE_GATEWAY": "http", "CITYLINE_URL": fake.base_url,
                            "CITYLINE_SECRET": fake.secret, "RUN_SCHEDULER": "false"}.items():
            monkeypatch.setenv(f"YINGJI_{name}", value)
        get_settings.cache_clear()
        reset_gateways()
        yield fake
    get_settings.cache_clear()
    reset_gateways()


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
async def tq(env, platform, people):
    queue = f"up-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_incidents(env.client)


def cadre(people) -> dict:
    return {"actor": people["duty_cadre"], "role": "duty_cadre"}


async def verbal(h, people):
    await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部"))


async def test_reports_reach_the_city_and_its_receipt_comes_back(env, tq, people, platform):
    inp = incident_input()  # 一般 (IV): the city only, not the province
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await verbal(h, people)
    [sent] = await wait_for(lambda: events(iid, "report.city.sent"), what="the verbal report to the city")
    [post] = platform.posts_of(f"{iid}/verbal")
    assert post.key == (f"{iid}/verbal", 1, "city_duty") and "【口头报告】" in post.body["text"]
    assert sent.payload["receipt_id"] == platform.reports[post.key]["receipt_id"]

    await h.execute_update(W.draft, DraftIn(**cadre(people), draft=draft()))
    await h.execute_update(W.review, ReviewIn(actor=people["leading_leader"], role="leading_leader", decision="approve"))
    await h.execute_update(W.submit, SubmitIn(**cadre(people)))
    await wait_for(lambda: len(events(iid, "report.city.sent")) == 2, what="the written report to the city")
    [post] = platform.posts_of(f"{iid}/0")
    assert post.key == (f"{iid}/0", 1, "city_duty") and "【书面报告】" in post.body["text"]
    assert not platform.posts_of(f"{iid}/verbal", "province_duty")  # not a major event

    async with api_client(env) as http:
        r = await platform.push_receipt(http, HOOK, f"{iid}/0", 1, "city_duty")
        assert r.status_code == 200, r.text
        again = await platform.push(http, HOOK, platform.receipt_body(f"{iid}/0", 1, "city_duty"),
                                    headers={k: v for k, v in r.request.headers.items() if k.startswith("x-cityline")})
        assert again.status_code == 403 and "replayed" in again.text  # the same signed request
        forged = await platform.push(http, HOOK, platform.receipt_body(f"{iid}/0", 1, "city_duty"), secret="wrong")
        assert forged.status_code == 403
        body = platform.receipt_body(f"{iid}/0", 1, "city_duty").replace(b'"version": 1', b'"version": 7')
        assert (await platform.push(http, HOOK, body)).status_code == 404  # never sent
    [receipt] = events(iid, "report.city.receipt")
    assert receipt.payload["by"] == "市局值班员" and receipt.payload["label"] == "书面报告"
    up = {(u["report_id"], u["to"]): u for u in incident_detail(iid)["upward"]}
    assert up[(f"{iid}/0", "city_duty")]["via"] == "cityline" and up[(f"{iid}/0", "city_duty")]["signed_by"]
    assert up[(f"{iid}/verbal", "city_duty")]["signed_at"] is None

    # the final report 终报 closes the chain and goes up too, after it is recorded submitted
    await h.execute_update(W.final, DraftIn(**cadre(people), draft=draft(what="现场处置完毕")))
    await h.execute_update(W.review, ReviewIn(actor=people["leading_leader"], role="leading_leader", decision="approve"))
    await h.execute_update(W.submit, SubmitIn(**cadre(people)))
    await h.result()
    [post] = platform.posts_of(f"{iid}/1")
    assert "【终报】" in post.body["text"] or "终报" in post.body["text"], post.body["text"]
    kinds = [e.kind for e in events(iid)]
    assert kinds.index("report.final.submitted") < max(i for i, k in enumerate(kinds) if k == "report.city.sent")


async def test_platform_down_after_its_retries_the_report_goes_by_sms(env, tq, people, platform):
    platform.down = True
    inp = incident_input()
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await verbal(h, people)
    await env.sleep(timedelta(minutes=2))  # past the retries' backoff
    [fallback] = await wait_for(lambda: events(iid, "report.city.fallback"), what="the SMS fallback")
    assert fallback.payload["attempts"] == 3 and "503" in fallback.payload["error"]
    [sms] = await wait_for(lambda: outbox(iid, "rcpt:city_duty"), what="the SMS to the city duty office")
    assert sms.channel == "sms" and sms.to == "+8613710000201" and sms.body.startswith("【口头报告】")
    assert not events(iid, "report.city.sent") and not platform.posts
    assert incident_detail(iid)["upward"][0]["via"] == "sms"
    await idle(h)


async def test_a_retried_activity_posts_once_and_a_major_event_reaches_the_province(env, tq, people, platform):
    # the platform takes the POST and its answer is lost, then the gateway's question right after fails too: the
    # attempt fails with the report taken, and the retry must find it rather than post again
    platform.fail_next(2)
    inp = incident_input(severity=Severity.II)
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await verbal(h, people)
    await env.sleep(timedelta(minutes=1))
    await wait_for(lambda: len(events(iid, "report.city.sent")) == 2, what="to the city and the province")
    sent = {e.payload["to"]: e for e in events(iid, "report.city.sent")}
    assert sent["city_duty"].payload["asked"] is True and sent["city_duty"].payload["attempts"] == 2
    assert len(platform.posts_of(f"{iid}/verbal", "city_duty")) == 1  # posted once
    assert len(platform.posts_of(f"{iid}/verbal", "province_duty")) == 1
    assert not events(iid, "report.city.fallback")


async def test_a_city_line_that_cannot_even_be_built_is_recorded_failed_and_the_chain_goes_on(env, tq, people, monkeypatch):
    monkeypatch.delenv("YINGJI_CITYLINE_SECRET")  # misconfigured: the http gateway refuses to start (no fallback)
    get_settings.cache_clear()
    reset_gateways()
    inp = incident_input()
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await verbal(h, people)
    await env.sleep(timedelta(minutes=2))
    [failed] = await wait_for(lambda: events(iid, "report.city.failed"), what="recorded failed")
    assert "YINGJI_CITYLINE_SECRET" in failed.payload["error"] and failed.payload["to"] == "city_duty"
    view = await h.execute_update(W.draft, DraftIn(**cadre(people), draft=draft()))  # the chain is alive
    assert view.status == "open" and incident_detail(iid)["upward"][0]["via"] == "failed"


def city_trail(iid: str) -> list[tuple[str, str]]:
    return [(e.kind, e.payload["report_id"]) for e in events(iid, "report.city.")]


async def verbal_report_taken(env, tq, people, held) -> tuple[str, str]:
    """A chain started and its verbal report made; returns (incident id, report id) once the platform, holding its
    answer (`held`), has taken the report's post."""
    inp = incident_input()
    h = await start(env.client, tq, inp)
    await verbal(h, people)
    await held.wait_taken()
    return inp.incident.incident_id, f"{inp.incident.incident_id}/verbal"


def api_client(env) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(temporal_client=env.client)),
                             base_url="http://test")


async def test_a_receipt_before_the_report_is_recorded_sent_is_kept_and_recorded_right_after_it_once(
        env, tq, people, platform):
    held = platform.hold_posts()  # the platform takes the post and answers only when released
    iid, rid = await verbal_report_taken(env, tq, people, held)
    async with api_client(env) as http:
        # the office signs while our activity still waits for the platform's answer: nothing recorded sent yet
        r = await platform.push_receipt(http, HOOK, rid, 1, "city_duty")
        assert r.status_code == 200, r.text  # was 404: "no report … was sent"
        assert r.json()["held"] == "report.city.receipt"
        again = await platform.push_receipt(http, HOOK, rid, 1, "city_duty", by="市局值班员乙")  # signed anew
        assert again.status_code == 200, again.text
        replay = await platform.push(http, HOOK, platform.receipt_body(rid, 1, "city_duty"),
                                     headers={k: v for k, v in r.request.headers.items() if k.startswith("x-cityline")})
        assert replay.status_code == 403  # the same signed request: a replay, as before
        assert not events(iid, "report.city.")  # held: the trail has neither event yet
        held.release()
        await wait_for(lambda: events(iid, "report.city.receipt"), what="the held receipt recorded")
        late = await platform.push_receipt(http, HOOK, rid, 1, "city_duty", by="市局值班员丙")
        assert late.status_code == 200 and late.json()["recorded"] == "report.city.receipt", late.text
    sent, receipt = events(iid, "report.city.")
    assert city_trail(iid) == [("report.city.sent", rid), ("report.city.receipt", rid)]
    assert receipt.chain == sent.chain and receipt.chain_seq == sent.chain_seq + 1  # right after it, one transaction
    assert receipt.at >= sent.at  # no time of its own from the platform: it bears the time it is recorded
    assert receipt.payload["receipt_id"] == sent.payload["receipt_id"] == platform.reports[(rid, 1, "city_duty")][
        "receipt_id"]
    assert receipt.payload["by"] == "市局值班员" and receipt.payload["label"] == "口头报告"
    assert receipt.payload["arrived_at"] and receipt.actor == "cityline:city_duty"
    assert len(platform.posts_of(rid, "city_duty")) == 1
    with session_scope(write=False) as s:
        assert verify(s, iid).ok
    [up] = incident_detail(iid)["upward"]
    assert up["via"] == "cityline" and up["signed_by"] == "市局值班员"


async def test_a_receipt_held_while_the_activity_is_retried_is_recorded_once_after_the_retry_finds_the_report(
        env, tq, people, platform):
    # the platform takes the post, holds its answer, then fails it and the question after it: the first try fails
    # with the report taken and its receipt already in; the retry asks, finds it and records it sent, then the receipt
    held = platform.hold_posts()
    platform.fail_next(2)
    iid, rid = await verbal_report_taken(env, tq, people, held)
    async with api_client(env) as http:
        r = await platform.push_receipt(http, HOOK, rid, 1, "city_duty")
        assert r.status_code == 200 and r.json()["held"] == "report.city.receipt", r.text
        held.release()
        await wait_for(lambda: platform.asks, what="the first try asking the platform after its 503")
        again = await platform.push_receipt(http, HOOK, rid, 1, "city_duty", by="市局值班员乙")
        assert again.status_code == 200, again.text  # between the tries: still being sent, kept once
    await env.sleep(timedelta(minutes=1))  # past the retry's backoff
    await wait_for(lambda: events(iid, "report.city.receipt"), what="the held receipt recorded")
    assert city_trail(iid) == [("report.city.sent", rid), ("report.city.receipt", rid)]
    sent = events(iid, "report.city.sent")[0]
    assert sent.payload["asked"] is True and sent.payload["attempts"] == 2
    assert len(platform.posts_of(rid, "city_duty")) == 1  # posted once


async def test_a_receipt_for_a_report_that_went_by_sms_or_never_went_is_refused(env, tq, people, platform):
    platform.down = True
    inp = incident_input()
    iid, rid = inp.incident.incident_id, f"{inp.incident.incident_id}/verbal"
    h = await start(env.client, tq, inp)
    await verbal(h, people)
    await env.sleep(timedelta(minutes=2))
    await wait_for(lambda: events(iid, "report.city.fallback"), what="the SMS fallback")
    async with api_client(env) as http:
        for report_id, version in ((rid, 1), (f"{iid}/0", 1), (rid, 2)):
            body = json.dumps({"receipt_id": "C-x", "report_id": report_id, "version": version, "to": "city_duty",
                               "status": "signed", "by": "市局值班员"}, ensure_ascii=False).encode()
            r = await platform.push(http, HOOK, body)
            assert r.status_code == 404, (report_id, version, r.text)
    assert city_trail(iid) == [("report.city.fallback", rid)]
