"""The console in Debian's Chromium against the real stack: the API under uvicorn, a worker, the Temporal dev server.

One call-out clicked through from a pasted CAP alert to the last acknowledgement (the board
changing live), an acknowledgement link on a phone-sized screen, and the replay slider moved
back to an earlier state. Screenshots go to tests/artifacts/console/.
"""
from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime

import httpx

from tests.browser.common import ADMIN, ARGS, ARTIFACTS, CHROMIUM, confirmed_click, needs_chromium, shot
from tests.helpers import as_delivered, cap_at

pytestmark = needs_chromium


async def _outbox(base: str, cid: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
        resp = await api.get("/api/outbox", params={"subject": cid, "limit": 1000})
        resp.raise_for_status()
        return resp.json()


async def test_callout_from_cap_paste_to_last_acknowledgement(dev_env, stack_env, server, people):
    from playwright.async_api import async_playwright, expect

    from worker import build_worker

    expect.set_options(timeout=20_000)
    for old in ARTIFACTS.glob("failure-*.png"):
        old.unlink()
    base = server
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")).new_page()

            # log in with the admin token
            await page.goto(f"{base}/console/desk")
            await expect(page).to_have_url(f"{base}/console/login?next=/console/desk")
            await page.get_by_label("访问令牌").fill(ADMIN)
            await page.locator("#token-login").click()
            await expect(page.get_by_role("heading", name="今日值班(1+1+X+X)")).to_be_visible()
            await expect(page.locator("body")).to_contain_text("值班长丁")
            await shot(page, "01-desk")

            # paste the CAP alert, preview who will be called, start
            await page.get_by_role("link", name="发起叫应").click()
            await page.locator(".modes label", has_text="粘贴 CAP").click()  # the form is the other mode
            await page.get_by_label("CAP XML 文档").fill(cap_at(f"qx-browser-{uuid.uuid4().hex[:8]}", datetime.now(UTC)))
            await page.get_by_role("button", name="预览叫应对象").click()
            await expect(page.locator("#preview-total")).to_contain_text("将叫应 11 人")
            for tier, n in (("departments", 3), ("towns", 4), ("villages", 4)):
                await expect(page.locator(f'[data-tier-count="{tier}"]')).to_have_text(str(n))
            await expect(page.locator("#preview")).to_contain_text("社区1-1防汛责任人")
            await expect(page.locator("#preview")).not_to_contain_text("街道3主任")  # outside the warning area
            await shot(page, "02-preview")
            await confirmed_click(page, page.locator("#start-button"))
            await page.wait_for_url(f"{base}/console/callouts/callout-*")
            cid = page.url.rsplit("/", 1)[1]

            # the board shows every target; nobody reloads it from here on
            rows = page.locator("#board tbody tr[id^='t-']")
            await expect(rows).to_have_count(11)
            await expect(page.locator("#live")).not_to_have_class("live off")
            await expect(page.locator('[data-total="notified"]')).to_have_text("11")
            await page.evaluate("window.__sameBoard = true")
            link = page.get_by_role("link", name="工作流(Temporal)")
            assert f"/namespaces/default/workflows/{cid}" in (await link.get_attribute("href") or "")
            await shot(page, "03-board-notified")

            # acknowledge: SMS replies through the simulator's controls, one by phone on their behalf
            head_row = page.locator("#board tbody tr", has_text="街道1主任")
            await head_row.get_by_role("button", name="消息与操作").click()
            await expect(page.locator("#detail")).to_contain_text("街道1主任")
            await page.locator("#detail").get_by_label("说明(如:已电话确认)").fill("已电话确认,正在赶往现场")
            await page.locator("#detail").get_by_role("button", name="确认").click()
            await expect(head_row.locator('[data-f="state"]')).to_have_text("已应答")
            await expect(head_row.locator('[data-f="ack"]')).to_contain_text("代确认")

            resp_name = "社区1-1防汛责任人"  # acknowledges by the link on a phone, below
            others = [r for r in await rows.all_inner_texts() if "街道1主任" not in r and resp_name not in r]
            assert len(others) == 9
            answered = 1
            ids = [await rows.nth(i).get_attribute("id") for i in range(11)]  # (answered rows move down)
            for row_id in ids:
                row = page.locator(f"#{row_id}")
                label = await row.locator('[data-f="label"]').inner_text()
                if "街道1主任" in label or resp_name in label:
                    continue
                await row.get_by_role("button", name="消息与操作").click()
                await expect(page.locator("#detail h2")).to_contain_text(label.split()[-1])
                await page.locator("#detail [data-sim='reply']").first.click()
                await expect(row.locator('[data-f="state"]')).to_have_text("已应答")
                answered += 1
                await expect(page.locator('[data-total="acknowledged"]')).to_have_text(str(answered))
                if answered == 6:
                    await shot(page, "04-board-half")
            assert answered == 10
            await expect(page.locator("#status")).to_have_attribute("data-status", "running")

            # the last one: the signed link in their SMS, opened on a phone-sized screen
            sms = [as_delivered(m["id"]) for m in await _outbox(base, cid)  # what the person's phone got
                   if m["channel"] == "sms" and m["ack_url"] and m["person_id"] == people["330110001001.resp"]]
            assert sms, "no SMS with a link to the last person"
            phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                              device_scale_factor=2, locale="zh-CN")
            mobile = await phone.new_page()
            await mobile.goto(sms[0].ack_url)
            confirm = mobile.get_by_role("button", name="确认收到")
            await expect(confirm).to_be_visible()
            box = await confirm.bounding_box()
            assert box and box["width"] >= 280 and box["height"] >= 48  # one big button, thumb-sized
            assert await mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            await shot(mobile, "05-phone-ack")
            await confirm.click()
            await expect(mobile.get_by_role("status")).to_contain_text("已确认")
            await shot(mobile, "06-phone-acked")
            # the board itself on the phone: rows become cards, nothing scrolls sideways
            await mobile.goto(f"{base}/console/callouts/{cid}")
            await expect(mobile).to_have_url(re.compile(r"/console/login"))
            await mobile.locator("#token").fill(ADMIN)
            await mobile.locator("#token-login").click()
            await expect(mobile.locator("#board tbody tr[id^='t-']")).to_have_count(11)
            assert await mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            await shot(mobile, "06b-phone-board")
            await phone.close()

            # 到户到人: each village person, once acknowledged, is asked to inform the households in danger and
            # confirms on the relay request's link (the last one on the phone); only then has the call-out done its work
            async def relay_links() -> dict[str, str]:
                out = {}
                for m in await _outbox(base, cid):
                    if m["channel"] == "sms" and m["ack_url"]:
                        d = as_delivered(m["id"])
                        if d.body.startswith("【到户】"):
                            out[m["person_id"]] = d.ack_url
                return out

            links: dict[str, str] = {}
            for _ in range(600):  # anti-hang: the request follows the acknowledgement within a second or two
                links = await relay_links()
                if people["330110001001.resp"] in links:
                    break
                await page.wait_for_timeout(100)
            resp = people["330110001001.resp"]
            assert resp in links, "no 到户 request to the village person"
            async with httpx.AsyncClient() as other_phones:
                for person, url in links.items():
                    if person != resp:
                        got = await other_phones.post(url, data={"households": "12"})
                        assert got.status_code == 200 and "到户12户" in got.text, got.text
            phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                              device_scale_factor=2, locale="zh-CN")
            mobile = await phone.new_page()
            await mobile.goto(links[resp])
            await mobile.locator("#households").fill("23")
            await mobile.get_by_role("button", name="确认到户").click()
            await expect(mobile.get_by_role("status")).to_contain_text("到户23户")
            await shot(mobile, "06c-phone-relayed")
            await phone.close()

            # ... and the board, untouched, shows the last acknowledgement and the end of the call-out
            last_row = page.locator("#board tbody tr", has_text=resp_name)
            await expect(last_row.locator('[data-f="state"]')).to_have_text("已应答")
            await expect(page.locator('[data-total="acknowledged"]')).to_have_text("11")
            await expect(page.locator("#status")).to_have_attribute("data-status", "completed", timeout=30_000)
            assert await page.evaluate("window.__sameBoard === true"), "the board was reloaded"
            await shot(page, "07-board-all-acknowledged")

            # the supervisor's replay: chain intact; the slider moved back shows fewer acknowledged
            await page.goto(f"{base}/console/replay/{cid}")
            await expect(page.locator("#chain-status")).to_have_attribute("data-ok", "true")
            state = page.locator("#replay-state")
            await expect(state).to_have_attribute("data-acknowledged", "11")
            await shot(page, "08-replay-end")
            slider = page.get_by_role("slider")
            await slider.focus()
            await page.keyboard.press("Home")
            await expect(state).to_have_attribute("data-acknowledged", "0")
            # the instant of the fifth answer, from the timeline
            await page.locator("#timeline tr[data-kind='callout.ack']").nth(4).get_by_role("button").click()
            await expect(state).to_have_attribute("data-acknowledged", "5")
            await shot(page, "09-replay-earlier")
            # filters of the timeline
            await page.get_by_label("类型").select_option("callout.ack")
            await page.get_by_role("button", name="筛选").click()
            await expect(page.locator("#timeline tbody tr")).to_have_count(11)

            # English on request
            await page.goto(f"{base}/console/desk?lang=en")
            await expect(page.get_by_role("heading", name="On duty now (1+1+X+X)")).to_be_visible()
            await shot(page, "10-desk-en")
        except BaseException:
            for n, ctx_page in enumerate(p for ctx in browser.contexts for p in ctx.pages):
                await shot(ctx_page, f"failure-{n}")
            raise
        finally:
            await browser.close()
    assert os.path.exists(ARTIFACTS / "09-replay-earlier.png")


PAGES = ["/console/desk", "/console/incidents", "/console/activations", "/console/reviews", "/console/handovers",
         "/console/drills", "/console/replay", "/console/directory", "/console/definitions", "/console/callouts/new"]


async def test_every_page_on_a_phone_with_nothing_from_outside(dev_env, stack_env, server, people):
    """Every console page on a phone-sized screen: it renders in Chinese and in English, fits the width,
    asks nothing of any other host, and logs no script error; an incident is received and its verbal
    report recorded by tapping through the forms."""
    from playwright.async_api import async_playwright, expect

    from worker import build_worker

    expect.set_options(timeout=20_000)
    base = server
    outside: list[str] = []
    errors: list[str] = []
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            ctx = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                            locale="zh-CN")
            page = await ctx.new_page()
            page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:")) else outside.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(f"{m.text} {m.location.get('url', '')}") if m.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status == 404 else None)

            await page.goto(f"{base}/console/login")
            await page.get_by_label("访问令牌").fill(ADMIN)
            await page.locator("#token-login").click()
            await expect(page.get_by_role("heading", name="今日值班(1+1+X+X)")).to_be_visible()

            for lang in ("zh", "en"):
                for path in PAGES:
                    resp = await page.goto(f"{base}{path}?lang={lang}")
                    assert resp is not None and resp.status == 200, (path, resp and resp.status)
                    await expect(page.locator("main h1").first).to_be_visible()
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 2, f"{path} ({lang}) is {overflow}px wider than a phone"
                    await shot(page, f"phone-{lang}-{path.strip('/').replace('/', '-')}")
            # 接报 by tapping through the form, then the verbal report, as the duty cadre (admin may not report)
            from store.auth import create_token
            from store.db import session_scope

            with session_scope() as s:
                cadre = create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="cadre")
            await ctx.clear_cookies()
            await page.goto(f"{base}/console/login?next=/console/incidents")
            await page.get_by_label("访问令牌").fill(cadre)
            await page.locator("#token-login").click()
            await page.wait_for_url(f"{base}/console/incidents")
            await page.get_by_label("事件类别").select_option("accident")
            await page.get_by_label("地点").fill("青溪路88号工地")
            await page.get_by_label("简要情况").fill("脚手架坍塌,2人受伤")
            await page.get_by_label("受伤").fill("2")
            await page.get_by_label("报告单位", exact=True).fill("第1街道")
            await page.get_by_label("报告人", exact=True).fill("街道值班员")
            await page.get_by_role("button", name="登记并启动报送时限").tap()
            await page.wait_for_url(re.compile(rf"{re.escape(base)}/console/incidents/INC-.*"))
            await expect(page.locator("#deadlines tbody tr").first).to_be_visible()
            await page.get_by_label("报告对象").fill("区政府总值班室")
            await page.get_by_role("button", name="登记口头报告").tap()
            await expect(page.locator("#verbal-made")).to_contain_text("区政府总值班室")
            await shot(page, "phone-incident")
        finally:
            await browser.close()
    assert not outside, f"requests to other hosts: {outside[:5]}"
    assert not errors, f"script errors: {errors[:5]}"
