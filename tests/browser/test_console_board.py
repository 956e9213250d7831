"""The live call-out board in Chromium (desktop and phone), at night (a voice call first, with an SMS in the same
round): a voicemail shows on the row at once; a person whose calls all failed rises to the top, flagged, without a
reload; the progress bar moves; 重新呼叫 sends one more round (a double click sends once); bulk 代为确认 of two
rows. Screenshots: tests/artifacts/console/board-*.png."""
from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.browser.common import ADMIN, DESKTOP, PHONE, launch, login, needs_chromium, shot
from tests.helpers import CAP

pytestmark = needs_chromium
VILLAGER = "社区1-1防汛责任人"


@pytest.fixture
def night(stack_env, monkeypatch):
    """Night hours that always hold (set before the server starts): the first round is a call and an SMS."""
    from config import get_settings

    monkeypatch.setenv("YINGJI_NIGHT_START", "00:00")
    monkeypatch.setenv("YINGJI_NIGHT_END", "23:59:59.999999")
    get_settings.cache_clear()


async def _api(base: str, method: str, path: str, **kw) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as api:
        resp = await api.request(method, path, **kw)
        resp.raise_for_status()
        return resp


async def _outbox(base: str, cid: str, person_id: str | None = None) -> list[dict]:
    params = {"subject": cid, "limit": 1000, **({"person_id": person_id} if person_id else {})}
    return sorted((await _api(base, "GET", "/api/outbox", params=params)).json(), key=lambda m: m["id"])


async def _play(base: str, message_id: int, outcome: str) -> None:
    await _api(base, "POST", f"/api/simulator/messages/{message_id}", json={"outcome": outcome})


@pytest.mark.parametrize("screen", ["desktop", "phone"])
async def test_board_order_progress_recall_and_bulk_ack(dev_env, stack_env, night, server, people, screen):
    from playwright.async_api import async_playwright, expect

    from worker import build_worker

    expect.set_options(timeout=20_000)
    base, villager = server, people["330110001001.resp"]
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        browser = await launch(pw)
        page = await (await browser.new_context(**(DESKTOP if screen == "desktop" else PHONE))).new_page()
        try:
            await login(page, base)
            started = await _api(base, "POST", "/api/warnings", content=CAP.format(ident=f"qx-board-{uuid.uuid4().hex[:8]}"),
                                 headers={"Content-Type": "application/cap+xml"})
            cid = started.json()["callout_id"]
            await page.goto(f"{base}/console/callouts/{cid}")
            await page.wait_for_selector("#board", timeout=20_000)  # (a moment "starting", reloading itself)
            rows = page.locator("#board tbody tr[id^='t-']")
            await expect(rows).to_have_count(11)
            await expect(page.locator("#live")).not_to_have_class("live off")
            await expect(page.locator('[data-progress-text="all"]')).to_contain_text("已通知 11 / 应叫应 11")
            await expect(page.locator('[data-progress-text="all"]')).to_contain_text("已应答 0")
            await page.evaluate("window.__sameBoard = true")
            await shot(page, f"board-{screen}-01-notified")

            # 语音信箱 on the villager's call: the row shows it at once (the SMS of the round still waits)
            row = page.locator("#board tbody tr", has_text=VILLAGER)
            await expect(row.locator(".try[data-channel='voice']")).to_have_text("语音 已发送")
            await row.get_by_role("button", name="消息与操作").click()
            await expect(page.locator("#detail h2")).to_contain_text(VILLAGER)
            await page.locator("#detail [data-sim='machine']").first.click()
            await expect(row.locator(".try[data-channel='voice']")).to_have_text("语音 语音信箱")
            await expect(row.locator(".try[data-channel='voice']")).to_have_class(re.compile(r"\bbad\b"))
            await expect(row.locator('[data-f="state"]')).to_have_text("已通知")
            await shot(page, f"board-{screen}-02-voicemail")

            # the SMS fails too, then the next call is not answered: escalated, flagged, first on the board
            assert VILLAGER not in await rows.first.locator('[data-f="label"]').inner_text()
            sms = [m for m in await _outbox(base, cid, villager) if m["channel"] == "sms"]
            await _play(base, sms[0]["id"], "failed")
            await expect(row.locator(".try[data-channel='voice']")).to_have_text("语音 已发送")  # the next round
            calls = [m for m in await _outbox(base, cid, villager) if m["channel"] == "voice"]
            await _play(base, calls[-1]["id"], "no_answer")
            await expect(row.locator('[data-f="state"]')).to_have_text("已升级")
            await expect(row.locator('[data-f="flag"]')).to_contain_text("本人未应答")
            await expect(rows.first.locator('[data-f="label"]')).to_contain_text(VILLAGER)
            await expect(rows.first).to_have_class(re.compile(r"\bflagged\b"))
            await shot(page, f"board-{screen}-03-flagged-first")

            # the progress bar moves with an answer
            head = people["330110001.head"]
            first = [m for m in await _outbox(base, cid, head) if m["channel"] == "sms"][0]
            await _play(base, first["id"], "reply")
            await expect(page.locator('[data-progress-text="all"]')).to_contain_text("已应答 1")
            await expect(page.locator('[data-progress="all"]')).to_have_attribute("aria-valuenow", "1")
            await expect(page.locator("#board tbody tr").last).to_contain_text("街道1主任")  # acknowledged: last

            # 重新呼叫 the villager: one more call and SMS, once for a double click
            before = len(await _outbox(base, cid, villager))
            await row.get_by_role("button", name="消息与操作").click()
            await expect(page.locator("#detail h2")).to_contain_text(VILLAGER)
            await page.locator("#recall-button").dblclick()
            await expect(page.locator("#recalled")).to_contain_text("已重新呼叫")
            await expect(page.locator("#recalled")).to_contain_text("已发出并记录消息 2")  # answered once recorded
            await expect(page.locator("#detail")).to_contain_text("重新呼叫")
            recalls = [m for m in await _outbox(base, cid, villager) if "/recall-" in m["idempotency_key"]]
            assert sorted(m["channel"] for m in recalls) == ["sms", "voice"]
            assert len({m["idempotency_key"].rsplit("/recall-", 1)[1] for m in recalls}) == 1
            assert len(await _outbox(base, cid, villager)) == before + 2
            await shot(page, f"board-{screen}-04-recalled")

            # bulk 代为确认 of two department heads
            picked = []
            for name in ("局长", "局长"):
                box = page.locator("#board tbody tr", has_text=name).locator('input[data-f="pick"]:not(:checked)').first
                picked.append(await box.get_attribute("value"))
                await box.check()
            picked = list(dict.fromkeys(picked))
            assert len(picked) == 2
            await expect(page.locator("#bulk-count")).to_have_text("2")
            await page.locator("#bulk-note").fill("已逐一电话确认")
            await page.locator("#bulk-ack").click()
            await expect(page.locator("#bulk-done")).to_contain_text("已代为确认 2")
            for tid in picked:
                await expect(page.locator(f"#t-{tid} [data-f='state']")).to_have_text("已应答")
                await expect(page.locator(f"#t-{tid} [data-f='ack']")).to_contain_text("代确认")
            await expect(page.locator('[data-progress-text="all"]')).to_contain_text("已应答 3")
            await expect(page.locator("#bulk-count")).to_have_text("0")
            assert await page.evaluate("window.__sameBoard === true"), "the board was reloaded"
            if screen == "phone":
                assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            await shot(page, f"board-{screen}-05-bulk")
        except BaseException:
            await shot(page, f"board-{screen}-failure")
            raise
        finally:
            await browser.close()
