"""抄报消防救援: a fire's written report is copied to the fire rescue brigade (a recipient of the rules marked `cc`,
for the subtypes its `when` names), its SMS marked 【抄报】, its receipt asked like the others'; a building site
accident is not copied. On the time-skipping server with the real activities and database."""
from __future__ import annotations

import uuid

import pytest
from temporalio.worker import Worker

from api.services.written import official_document
from config import get_settings
from definitions.loader import load_or_raise
from store.db import session_scope
from tests.factories import small_district
from tests.workflows.callout_helpers import wait_for
from tests.workflows.reporting_helpers import (DEFINITIONS, draft, incident_input, outbox, receipts, start,
                                               terminate_incidents)
from worker import build_worker
from workflows.reporting import DraftIn, IncidentReportingWorkflow as W, ReviewIn, SubmitIn


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
async def tq(env, people):
    queue = f"cc-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_incidents(env.client)


async def submitted(env, tq, people, subtype: str) -> str:
    inp = incident_input(subtype=subtype)
    h = await start(env.client, tq, inp)
    cadre = {"actor": people["duty_cadre"], "role": "duty_cadre"}
    await h.execute_update(W.draft, DraftIn(**cadre, draft=draft()))
    await h.execute_update(W.review, ReviewIn(actor=people["leading_leader"], role="leading_leader", decision="approve"))
    await h.execute_update(W.submit, SubmitIn(**cadre))
    return inp.incident.incident_id


async def test_a_fire_is_copied_to_fire_rescue_and_a_building_site_accident_is_not(env, tq, people):
    fire = await submitted(env, tq, people, "火灾")
    await wait_for(lambda: len(receipts(fire, 0)) == 3, what="three recipients")
    assert set(receipts(fire, 0)) == {"committee_office", "government_office", "fire_rescue"}
    [sms] = await wait_for(lambda: outbox(fire, "rcpt:fire_rescue"), what="the copy to fire rescue")
    assert sms.to == "+8613710000119" and sms.body.startswith("【抄报】【书面报告】")
    assert not outbox(fire, "rcpt:committee_office")[0].body.startswith("【抄报】")
    lib = load_or_raise(DEFINITIONS)
    with session_scope(write=False) as s:  # the 公文: fire rescue is 抄送, not 主送
        doc, _ = official_document(s, lib, fire, 0, None, get_settings().timezone)
    assert "区消防救援大队" not in doc.recipients and "区消防救援大队" in doc.copies_to

    site = await submitted(env, tq, people, "建筑施工")
    await wait_for(lambda: len(receipts(site, 0)) == 2, what="two recipients")
    assert "fire_rescue" not in receipts(site, 0) and not outbox(site, "rcpt:fire_rescue")
