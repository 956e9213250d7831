"""DingTalk work notifications 工作通知 against the local fake DingTalk oapi, through the real delivery code: a personal
action card whose button is the signed link, the access token kept and fetched again when stale, errors as
outcomes, a retried send reaching the person once, the read status recorded as delivered (not as an answer), the
directory's dingtalk_user_id as the IM address, and the group robot still the default without it."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select

from activities.delivery import Claim, Delivery, _begin_call, _claim, deliver
from activities.gateways import OutgoingMessage, gateway_for, reset_gateways
from activities.gateways.dingtalk import DingTalkGateway
from api.services.dingtalk_reads import poll_read_status
from config import get_settings
from store.db import session_scope
from store.directory import Person
from store.messages import OutboxMessage
from tests.fakes.dingtalk_server import FakeDingTalk, use_fake_dingtalk


@pytest.fixture(scope="module")
def fake():
    with FakeDingTalk() as f:
        yield f


@pytest.fixture
def dingtalk(fake, db_url, monkeypatch):
    use_fake_dingtalk(monkeypatch, fake)
    gw = gateway_for("im")
    assert isinstance(gw, DingTalkGateway)
    gw.throttle_backoff_s = 0.01
    yield fake
    reset_gateways()


def im(n: int, link: bool = True) -> Delivery:
    return Delivery(key=f"d/{n}/im", channel="im", to=f"user{n:03d}", body=f"【叫应】暴雨橙色预警 {n}\n请确认",
                    ack_url=f"https://yingji.example.gov.cn/ack/token{n}" if link else None, person_id=f"p{n}",
                    subject="callout-d")


def rows() -> dict[str, OutboxMessage]:
    with session_scope(write=False) as s:
        return {r.idempotency_key: r for r in s.exec(select(OutboxMessage))}


async def test_a_personal_action_card_whose_button_is_the_signed_link(dingtalk):
    [out] = await deliver([im(1)])
    [n] = dingtalk.notifications.values()
    assert n.userid == "user001" and n.msg["msgtype"] == "action_card"
    card = n.msg["action_card"]
    assert card["single_url"] == "https://yingji.example.gov.cn/ack/token1" and card["single_title"] == "确认收到"
    assert card["markdown"] == im(1).body and card["title"] == "【叫应】暴雨橙色预警 1"
    assert out.status == "sent" and out.provider_id == f"dingtalk:{n.task_id}:user001" == rows()["d/1/im"].provider_id
    assert rows()["d/1/im"].gateway == "dingtalk"


async def test_a_notice_is_text(dingtalk):
    await deliver([im(1, link=False)])
    [n] = dingtalk.notifications.values()
    assert n.msg == {"msgtype": "text", "text": {"content": im(1).body}}


async def test_the_token_is_kept_and_fetched_again_when_stale(dingtalk):
    await deliver([im(1), im(2)])
    assert dingtalk.token_requests == 1
    dingtalk.expire_tokens()  # DingTalk answers 40014: the gateway fetches a new token and sends once
    [out] = await deliver([im(3)])
    assert out.status == "sent" and dingtalk.token_requests == 2 and len(dingtalk.notifications) == 3
    assert dingtalk.refused == [40014]


async def test_an_error_is_the_outcome_and_flow_control_is_retried(dingtalk):
    dingtalk.fail_next(1, 60020)
    [out] = await deliver([im(1)])
    assert out.status == "failed" and "60020" in out.error
    dingtalk.fail_next(2, 90018)
    [out] = await deliver([im(2)])
    assert out.status == "sent" and len(dingtalk.notifications) == 1


async def test_no_userid_is_a_failure_not_a_request(dingtalk):
    item = im(1)
    item.to = ""
    [out] = await deliver([item])
    assert out.status == "failed" and "dingtalk_user_id" in out.error and dingtalk.notifications == {}


async def test_a_lost_answer_is_sent_again_and_reaches_the_person_once(dingtalk):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    item = im(1)
    crashed = Claim("wf/run/im", 1)
    row = (await asyncio.to_thread(_claim, [item], crashed))[item.key]
    assert await asyncio.to_thread(_begin_call, row["id"], crashed)
    msg = OutgoingMessage(outbox_id=row["id"], idempotency_key=item.key, channel="im", to=item.to, body=item.body,
                          ack_url=item.ack_url, created_at=row["created_at"])
    assert (await gateway_for("im").send(msg)).status == "sent"  # … and the worker died before recording it
    with session_scope() as s:
        s.execute(update(OutboxMessage).values(gateway_at=datetime.now(UTC) - timedelta(minutes=1)))
    [out] = await deliver([item])
    assert out.status == "sent"
    assert len(dingtalk.notifications) == 2 and len(dingtalk.delivered("user001")) == 1  # DingTalk dropped the copy


async def test_read_is_recorded_as_delivered_not_as_an_answer(dingtalk):
    dingtalk.users = {"user001", "user002"}
    try:
        outs = {o.key: o for o in await deliver([im(1), im(2), im(3)])}
        assert await poll_read_status(None) == {outs["d/3/im"].provider_id: "undelivered"}
        task = int(outs["d/1/im"].provider_id.split(":")[1])
        dingtalk.read(task)
        assert await poll_read_status(None) == {outs["d/1/im"].provider_id: "delivered"}
        r = rows()
        assert (r["d/1/im"].status, r["d/2/im"].status, r["d/3/im"].status) == ("delivered", "sent", "undelivered")
        assert await poll_read_status(None) == {}  # asked about the unread one only, which stays unread
    finally:
        dingtalk.users = set()


def test_the_im_address_is_the_dingtalk_userid_with_dingtalk_and_the_im_id_otherwise(db_url, monkeypatch):
    from activities.common import contact

    p = Person(id="p1", name="张三", mobile="+8613900000001", im_id="zhangsan", dingtalk_user_id="0155")
    monkeypatch.setenv("YINGJI_GATEWAY_IM", "dingtalk")
    get_settings.cache_clear()
    assert contact(p).address("im") == "0155"
    monkeypatch.delenv("YINGJI_GATEWAY_IM")
    monkeypatch.setenv("YINGJI_IM_WEBHOOK_URL", "https://oapi.dingtalk.com/robot/send?access_token=x")
    get_settings.cache_clear()
    assert contact(p).address("im") == "zhangsan"
    assert gateway_for("im").name == "im"  # the group robot, as before
    reset_gateways()
    get_settings.cache_clear()


def test_the_directory_import_takes_the_dingtalk_userid(db_url, tmp_path: Path):
    from store.directory_import import import_directory

    head = ("org_unit_id,org_unit_name,org_unit_kind,parent_id,position_code,person_id,person_name,mobile,mobile2,"
            "im_id,deputy_id,superior_id,language,dingtalk_user_id\n")
    path = tmp_path / "d.csv"
    path.write_text(head + "330110,青溪区,district,,district_head,h,赵大,13900009990,,,,,,\n"
                           "330110001,青溪街道,town,330110,town_head,n1,赵六,13900009999,,zl,,h,zh,0102\n")
    with session_scope() as s:
        import_directory(s, path)
    with session_scope(write=False) as s:
        assert s.get(Person, "n1").dingtalk_user_id == "0102" and s.get(Person, "h").dingtalk_user_id is None
    yaml_path = tmp_path / "d.yaml"
    yaml_path.write_text("persons:\n  - {id: n1, name: 赵六, mobile: '13900009999', org_unit: '330110001', "
                         "dingtalk_user_id: '0177'}\n", encoding="utf-8")
    with session_scope() as s:
        import_directory(s, yaml_path)
    with session_scope(write=False) as s:
        assert s.get(Person, "n1").dingtalk_user_id == "0177"


async def test_the_scheduler_asks_for_read_status_only_with_dingtalk(dingtalk, monkeypatch):
    from api.feeds import start_scheduler

    async def no_temporal():
        return None

    for im_gateway, expected in (("dingtalk", True), ("simulator", False)):
        monkeypatch.setenv("YINGJI_GATEWAY_IM", im_gateway)
        get_settings.cache_clear()
        scheduler = start_scheduler(get_settings(), no_temporal)
        try:
            job = scheduler.get_job("dingtalk-read")
            assert (job is not None) == expected
            if job is not None:
                assert job.trigger.interval.total_seconds() == get_settings().dingtalk_read_poll_s
        finally:
            scheduler.shutdown(wait=False)
