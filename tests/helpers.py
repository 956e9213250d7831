"""Small things several end-to-end tests share."""
from __future__ import annotations

import asyncio

# An orange heavy-rain CAP 1.2 alert for towns 330110001 and 330110002 (made up); fill in {ident}.
CAP = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{ident}</identifier>
  <sender>qingxi-meteo@example.cn</sender>
  <sent>2026-07-01T03:10:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <senderName>青溪区气象台</senderName>
    <headline>青溪区气象台发布暴雨橙色预警信号</headline>
    <description>预计未来3小时第1街道、第2街道降雨量将达50毫米以上。</description>
    <parameter><valueName>预警级别</valueName><value>橙色</value></parameter>
    <area>
      <areaDesc>第1街道、第2街道</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>330110001</value></geocode>
      <geocode><valueName>GB/T 2260</valueName><value>330110002</value></geocode>
    </area>
  </info>
</alert>
"""


async def poll(fetch, until, timeout=60.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if until(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {value!r}"[:2000])
        await asyncio.sleep(0.2)


async def console_login(app, token: str):
    """An httpx client logged in to the console of `app` with a bearer token; `.csrf` holds its CSRF token."""
    import re

    import httpx

    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")
    page = await web.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    resp = await web.post("/console/login/token", data={"token": token, "csrf": csrf})
    assert resp.status_code == 303, resp.text
    desk = await web.get("/console/desk")
    web.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', desk.text).group(1)  # type: ignore[attr-defined]
    return web


async def console_post(web, path: str, data: dict):
    """A console form POST with the session's CSRF token."""
    return await web.post(path, data={**data, "csrf": web.csrf})
