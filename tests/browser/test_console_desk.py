"""The live duty desk in Chromium (desktop and phone) against the real stack: the API under uvicorn, a worker,
the Temporal dev server.

With the desk open and its stream connected, a warning posted through the REST API shows on the desk and
raises the alarm (the flashing banner naming it, the sound started, a browser notification) within 2 s,
without a reload; an overdue time limit raises it too; muted (remembered over a reload) it stays visible and
silent for an unreachable person. The leading leader's 待我处理 lists the draft waiting for approval. A
data-confirm action (cancelling the call-out) asks first and does nothing when dismissed, and goes ahead when
confirmed. The activation form has no default level, shows the chosen level's 启动条件 and marks the level
the incident meets as proposed without choosing it."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
import pytest

from tests import desk_seed as seed
from tests.browser.common import ADMIN, ARGS, CHROMIUM, DESKTOP, PHONE, login, needs_chromium, shot
from tests.helpers import CAP

pytestmark = needs_chromium

# counts the browser notifications the page shows (the permission is granted to the context)
NOTIFICATIONS = """
window.__notified = [];
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = function (title, opts) { window.__notified.push(title + ' ' + ((opts || {}).body || '')); return new Real(title, opts); };
  Object.defineProperty(window.Notification, 'permission', { get: () => Real.permission });
  window.Notification.requestPermission = Real.requestPermission.bind(Real);
}
"""


# an htmx button and a form whose submit button asks (as the new call-out page's start and apply buttons)
PROBES = """
const b = document.createElement('button');
b.id = 'hx-probe'; b.type = 'button'; b.textContent = 'probe';
b.setAttribute('hx-post', '/console/probe-hx'); b.setAttribute('hx-swap', 'none');
b.setAttribute('data-confirm', '探测:将发送 1 个请求');
const f = document.createElement('form');
f.id = 'form-probe'; f.method = 'post'; f.action = '/console/probe-form';
f.innerHTML = '<button type="submit" name="go" value="1" data-confirm="探测:表单">go</button>';
document.querySelector('main').append(b, f);
htmx.process(b);
"""


def _db(fn, *args):
    from store.db import session_scope

    with session_scope() as s:
        return fn(s, *args)


async def _alarm_test(page, base: str, name: str, people: dict) -> str:
    """Warning → alarm without a reload (how long it took is printed, not asserted: the issue's 2 s is a
    figure measured on a quiet machine, and a busy CI machine must not fail the suite); overdue limit → alarm;
    mute, remembered; unreachable → silent alarm.
    Returns the call-out the warning started."""
    from playwright.async_api import expect

    banner, sounds = page.locator("#alarm"), page.locator("#alarm[data-sounds]")
    await expect(page.locator("#desk")).to_have_attribute("data-live", "on")  # the stream is connected
    await expect(page.locator("#desk-live")).to_have_text("实时")
    await expect(banner).to_be_hidden()

    headline = "青溪区气象台发布暴雨橙色预警信号"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
        resp = await api.post("/api/warnings", content=CAP.format(ident=f"qx-desk-{uuid.uuid4().hex[:8]}"),
                              headers={"Content-Type": "application/cap+xml"})
    posted = time.monotonic()
    assert resp.status_code == 201, resp.text
    cid = resp.json()["callout_id"]
    await expect(banner).to_be_visible()
    await expect(page.locator("#alarm-list")).to_contain_text(f"新预警:{headline}")
    await expect(banner).to_have_class("alarm flashing")
    await expect(sounds).not_to_have_attribute("data-sounds", "0")  # the sound started
    await expect(page.locator("#desk-body")).to_contain_text(headline)  # the desk refreshed itself
    print(f"alarm shown {time.monotonic() - posted:.2f}s after the POST returned")
    assert await page.evaluate("window.__sameDesk") is True  # no reload
    notified = await page.evaluate("window.__notified")
    assert any(headline in n for n in notified), notified
    await shot(page, f"desk-{name}-alarm-warning")
    await page.locator("#alarm-dismiss").click()
    await expect(banner).to_be_hidden()

    # a time limit becomes overdue while the desk is open
    before = await page.evaluate("window.yingjiDesk.sounds")
    late = _db(seed.incident, "青溪路脚手架坍塌", timedelta(seconds=3))
    await expect(page.locator("#alarm-list")).to_contain_text("已超时:青溪路脚手架坍塌 · 口头报告", timeout=15_000)
    await page.wait_for_function(f"window.yingjiDesk.sounds > {before}")  # and sounded again
    assert await page.locator("#alarm-list a").first.get_attribute("href") == f"/console/incidents/{late}"
    await shot(page, f"desk-{name}-alarm-overdue")
    await page.locator("#alarm-dismiss").click()

    # muted, and remembered over a reload: a person becomes unreachable, the banner shows, nothing sounds
    await page.locator("#alarm-mute").click()
    await expect(page.locator("#alarm-mute")).to_have_attribute("aria-pressed", "true")
    await page.reload()
    await expect(page.locator("#alarm-mute")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#alarm-mute")).to_have_text("取消静音")
    await expect(page.locator("#desk")).to_have_attribute("data-live", "on")
    _db(seed.unreachable, people["330110002.head"], "街道2主任")
    await expect(page.locator("#alarm-list")).to_contain_text("联系不上:街道2主任", timeout=5000)
    await expect(banner).to_be_visible()
    await expect(sounds).to_have_attribute("data-sounds", "0")  # a new page: nothing sounded while muted
    assert await page.evaluate("window.yingjiDesk.alarms") >= 1
    await expect(page.locator("#todo")).to_contain_text("联系不上,请电话联系")  # the admin's list: phone them
    await shot(page, f"desk-{name}-alarm-muted")
    await page.locator("#alarm-mute").click()
    await expect(page.locator("#alarm-mute")).to_have_attribute("aria-pressed", "false")
    return cid


async def _confirm_test(page, base: str, cid: str, name: str) -> None:
    """Cancelling the call-out asks; dismissed, nothing is sent; confirmed, it is cancelled."""
    from playwright.async_api import expect

    await page.goto(f"{base}/console/callouts/{cid}")
    await expect(page.locator("#board tbody tr[id^='t-']")).to_have_count(11)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await page.get_by_text("终止叫应", exact=True).first.click()  # the <summary>
    await page.locator("#cancel-reason").fill("演示结束")
    await page.locator("#form-cancel button[type=submit]").click()
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("请确认")
    await expect(dialog).to_contain_text("将终止叫应")
    await expect(dialog).to_contain_text("尚未应答的 11 人")
    await shot(page, f"confirm-{name}-cancel")
    await dialog.get_by_role("button", name="取消").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#status")).to_have_attribute("data-status", "running")
    assert not [u for u in posts if u.endswith("/cancel")], posts  # nothing was sent
    assert page.url == f"{base}/console/callouts/{cid}"

    await page.locator("#form-cancel button[type=submit]").click()
    await dialog.get_by_role("button", name="确定执行").click()
    await expect(page.locator("#status")).to_have_attribute("data-status", "canceled", timeout=20_000)
    assert [u for u in posts if u.endswith("/cancel")]

    # the same for an htmx button and for the submit button of a form carrying the attribute itself
    await page.evaluate(PROBES)
    for probe, path in (("#hx-probe", "/console/probe-hx"), ("#form-probe button", "/console/probe-form")):
        await page.locator(probe).click()
        await expect(dialog).to_contain_text("探测")
        await dialog.get_by_role("button", name="取消").click()
        assert not [u for u in posts if u.endswith(path)], posts
        await page.locator(probe).click()
        async with page.expect_request(lambda r, p=path: r.url.endswith(p) and r.method == "POST"):
            await dialog.get_by_role("button", name="确定执行").click()


async def _level_test(page, base: str, incident_id: str, name: str) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base}/console/activations")
    form = page.locator("#form-activate")
    await expect(form.get_by_label("应急预案")).to_be_visible()  # not 叫应方案
    level = page.locator("#act-level")
    assert await level.input_value() == ""  # no default level
    await page.locator("#act-plan").select_option("work_safety")
    await page.locator("#act-incident").select_option(incident_id)
    await expect(page.locator("#start-condition")).to_be_hidden()
    await expect(page.locator("#level-proposal")).to_be_visible()  # the incident (Ⅲ级, 坍塌) meets Ⅲ级
    await expect(page.locator("#level-proposal")).to_have_attribute("data-level", "III")
    await expect(level.locator("option[value=III]")).to_contain_text("(建议)")
    assert await level.input_value() == ""  # proposed, not chosen
    await level.select_option("II")
    await expect(page.locator("#start-condition")).to_be_visible()
    await expect(page.locator("#start-condition")).to_contain_text("启动条件")
    await expect(page.locator("#start-condition")).to_contain_text("重大")
    await shot(page, f"activation-{name}-level")
    # submitting without a level is refused by the browser (required): nothing is posted
    await level.select_option("")
    await page.locator("#form-activate textarea[name=reason]").fill("测试")
    await form.locator("button[type=submit]").click()
    assert await page.evaluate("document.querySelector('#act-level').validity.valueMissing") is True
    assert page.url == f"{base}/console/activations"


@pytest.mark.budget(120)
@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_live_desk_alarms_confirmations_and_levels(dev_env, stack_env, server, people, size):
    from playwright.async_api import async_playwright, expect

    from store.auth import create_token
    from worker import build_worker

    expect.set_options(timeout=15_000)
    base = server
    screen = DESKTOP if size == "desktop" else PHONE
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                           args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        errors: list[str] = []
        try:
            ctx = await browser.new_context(**screen, permissions=["notifications"])
            await ctx.add_init_script(NOTIFICATIONS)
            page = await ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            await login(page, base)
            await page.evaluate("window.__sameDesk = true")
            cid = await _alarm_test(page, base, size, people)
            await _confirm_test(page, base, cid, size)

            proposed = _db(seed.incident, "青溪路工地坍塌", timedelta(hours=1), "written", "书面报告", "III")
            await _level_test(page, base, proposed, size)

            # the leading leader's 待我处理: the draft waiting for approval, linked to where it is approved
            waiting = _db(seed.incident, "第1街道山体滑坡", timedelta(hours=1), "written", "书面报告")
            _db(seed.draft, waiting)
            leader = _db(lambda s: create_token(s, "leading_leader", person_id=people["leading_leader"], label="leader"))
            lctx = await browser.new_context(**screen)
            lpage = await lctx.new_page()
            await login(lpage, base, leader)
            todo = lpage.locator("#todo")
            await expect(todo).to_contain_text("待我处理")
            entry = todo.locator("li[data-kind=approve_report]")
            await expect(entry).to_contain_text("待审批")
            await expect(entry).to_contain_text("第1街道山体滑坡")
            await expect(entry).to_contain_text("书面报告 v1")
            assert await entry.get_by_role("link").get_attribute("href") == f"/console/incidents/{waiting}#h-reports"
            await expect(todo.locator("li[data-kind=phone]")).to_have_count(0)  # the duty office's, not the leader's
            await shot(lpage, f"desk-{size}-leader-todo")
            await entry.get_by_role("link").click()
            await lpage.wait_for_url(f"{base}/console/incidents/{waiting}*")
            await lctx.close()
        finally:
            await browser.close()
    assert not errors, errors
