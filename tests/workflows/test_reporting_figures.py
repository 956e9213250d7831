"""灾情统计 as data on the time-skipping test server with the real activities and database: figures at intake, in
the written report and the follow-ups, validated (non-negative, counts whole), running totals that may not fall
without a correction, the chain's and the incident row's figures those of the last approved report, and the review's
event report showing each report's totals, what it added, and the totals summed over the follow-ups; old histories
(no figures) replay."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from temporalio.worker import Worker

from definitions.schema.reporting import DisasterFigures
from store.db import session_scope
from store.incidents import Incident
from store.replay import load_events
from store.report import render
from store.review.stats import statistics
from tests.factories import small_district
from tests.helpers import replayer
from tests.workflows.reporting_helpers import draft, incident_input, start, terminate_incidents
from tests.workflows.test_activation import refused
from worker import build_worker
from workflows.reporting import DraftIn, IncidentReportingWorkflow as W, ReviewIn, SubmitIn


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"fig-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_incidents(env.client)


def figures(**kw) -> DisasterFigures:
    return DisasterFigures(**kw)


def test_figures_are_validated():
    for bad in ({"affected_population": -1}, {"relocated": 1.5}, {"crop_area_ha": -0.1}, {"direct_loss_wan": float("nan")},
                {"houses_collapsed": "many"}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            DisasterFigures(**bad)
    assert DisasterFigures(crop_area_ha=12.5, direct_loss_wan=30.25).crop_area_ha == 12.5


async def test_figures_run_through_the_reports_and_the_event_report(env, tq, people):
    cadre = {"actor": people["duty_cadre"], "role": "duty_cadre"}
    leader = {"actor": people["leading_leader"], "role": "leading_leader"}
    inp = incident_input()
    inp = inp.model_copy(update={"incident": inp.incident.model_copy(update={
        "figures": figures(affected_population=300, relocated=50)})})
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    assert (await h.query(W.state)).figures.affected_population == 300

    async def report(update, f: DisasterFigures, injured: int = 2) -> None:
        await h.execute_update(update, DraftIn(**cadre, draft=draft(injured=injured, figures=f)))
        await h.execute_update(W.review, ReviewIn(**leader, decision="approve"))
        await h.execute_update(W.submit, SubmitIn(**cadre))

    await report(W.draft, figures(affected_population=1200, relocated=300, houses_damaged=12, crop_area_ha=40.5,
                                  direct_loss_wan=85))
    view = await h.query(W.state)
    assert (view.figures.affected_population, view.figures.crop_area_ha) == (1200, 40.5)
    # a running total may not fall without a correction 核减说明
    await refused(h.execute_update(W.followup, DraftIn(**cadre, draft=draft(figures=figures(
        affected_population=1000, relocated=300, houses_damaged=12, crop_area_ha=40.5, direct_loss_wan=85)))),
        "invalid", "受灾人口1000<1200人")
    await report(W.followup, figures(affected_population=1500, relocated=420, houses_collapsed=2, houses_damaged=20,
                                     crop_area_ha=60, direct_loss_wan=130), injured=3)
    await report(W.followup, figures(affected_population=1450, relocated=420, houses_collapsed=2, houses_damaged=20,
                                     crop_area_ha=60, direct_loss_wan=150, correction="重复统计50人已核减"), injured=3)
    view = await h.query(W.state)
    assert (view.figures.affected_population, view.figures.direct_loss_wan) == (1450, 150)
    with session_scope(write=False) as s:
        row = s.get(Incident, iid)
        assert row.figures["affected_population"] == 1450 and row.figures["houses_collapsed"] == 2
        events = load_events(s, iid)
    st = statistics({iid: events})
    fig = st["reporting"][0]["figures"]
    assert [r["label"] for r in fig["reports"]] == ["接报", "书面报告", "续报一", "续报二"]
    assert [r["total"]["affected_population"] for r in fig["reports"]] == [300, 1200, 1500, 1450]
    assert [r["added"]["affected_population"] for r in fig["reports"]] == [300, 900, 300, -50]
    assert [r["added"]["injured"] for r in fig["reports"]] == [0, 2, 1, 0]
    assert fig["total"] == {"affected_population": 1450, "relocated": 420, "deaths": 0, "missing": 0, "injured": 3,
                            "houses_collapsed": 2, "houses_damaged": 20, "crop_area_ha": 60, "direct_loss_wan": 150}
    assert sum(r["added"]["direct_loss_wan"] for r in fig["reports"]) == fig["total"]["direct_loss_wan"]
    _, html, _ = render({"incident_id": iid, "title": "x", "version": 1, "final": False,
                         "compiled_at": datetime.now(UTC).isoformat(), "incident": {"title": "x"}, "timeline": [],
                         "statistics": st, "units": [], "lessons": {"shortcomings": [], "suggestions": []},
                         "signoff": None, "returns": [], "names": {}}, pdf=False)
    for words in ("灾情统计", "受灾人口(人)", "直接经济损失(万元)", "<td>续报二(核减:重复统计50人已核减)</td>",
                  "1450(-50)", "合计(最新累计)"):
        assert words in html, words
    await replayer(W).replay_workflow(await h.fetch_history())
