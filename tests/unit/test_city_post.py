"""store/upward.py through the city webhook: a post begun and not settled keeps the platform's receipt; the event
that settles the post (here the chain's `report.city.failed`: activities/reporting.py) is followed by it, once; a
settled post that never reached `report.city.sent`, or a post never begun, is 404 as before."""
from __future__ import annotations

import json

import httpx
import pytest

from activities.upward import step_of
from api.app import create_app
from config import get_settings
from store import upward as posts
from store.audit import NewEvent, append, verify
from store.db import session_scope
from tests.fakes.city_platform import FakeCityPlatform
from tests.workflows.reporting_helpers import events
from workflows.kit.events import Reporting as Kinds

IID, WF = "INC-CITYPOST1", "incident-INC-CITYPOST1"
RID = f"{IID}/verbal"
STEP = step_of("city_duty", RID, 1)
BASE = {"to": "city_duty", "name": "市应急管理局值班室", "report_id": RID, "version": 1, "kind": "verbal",
        "label": "口头报告"}
HOOK = "/api/webhooks/cityline"


@pytest.fixture
def city(db_url, monkeypatch):
    fake = FakeCityPlatform()  # not started: only its signing of receipts is used
    monkeypatch.setenv("YINGJI_CITYLINE_SECRET", fake.secret)
    get_settings.cache_clear()
    yield fake
    get_settings.cache_clear()


def receipt(by: str = "市") -> bytes:
    """The office's receipt; signed for by someone else (`by`), another request, not a replay of the first."""
    return json.dumps({"receipt_id": "C-1", "report_id": RID, "version": 1, "to": "city_duty", "status": "signed",
                       "by": by}, ensure_ascii=False).encode()


async def push(fake: FakeCityPlatform, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://test") as http:
        return await fake.push(http, HOOK, body)


async def test_a_receipt_held_for_a_post_that_failed_goes_right_after_report_city_failed_once(city):
    assert (await push(city, receipt())).status_code == 404  # never begun: as before
    with session_scope() as s:
        posts.begin(s, IID, STEP, WF)
    r = await push(city, receipt())
    assert r.status_code == 200 and r.json()["held"] == Kinds.CITY_RECEIPT, r.text
    assert (await push(city, receipt(by="市乙"))).status_code == 200  # again: the first one is kept
    with session_scope() as s:
        posts.begin(s, IID, STEP, WF)  # a retried activity begins it again: the receipt stays
    assert not events(IID)

    failed = NewEvent(subject=IID, kind=Kinds.CITY_FAILED, step_id=f"{STEP}/failed", workflow_id=WF, payload=BASE)
    with session_scope() as s:
        append(s, posts.settle(s, failed))
    with session_scope() as s:
        assert posts.settle(s, failed) == [failed]  # settled: nothing held twice
        append(s, [failed])
    got = events(IID)
    assert [e.kind for e in got] == [Kinds.CITY_FAILED, Kinds.CITY_RECEIPT]
    assert got[1].chain_seq == got[0].chain_seq + 1 and got[1].step_id == f"{STEP}/receipt"
    assert got[1].payload["label"] == "口头报告" and got[1].payload["by"] == "市" and got[1].workflow_id == WF
    # settled without report.city.sent: a receipt now is for a report the platform never took, 404 as before
    assert (await push(city, receipt(by="市丙"))).status_code == 404
    with session_scope(write=False) as s:
        assert verify(s, IID).ok
