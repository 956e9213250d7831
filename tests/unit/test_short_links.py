"""Short aliases of signed links (`/a/<12 characters>`, store/links.py): what texts carry instead of the ~150
characters of a signed link. The alias leads to the signed link, which checks itself as before; an alias
that is not ours or not stored leads nowhere; staff views, logs and case files mask it like the link."""
from __future__ import annotations

import httpx

from api.security import LinkLimits, masked_message
from config import get_settings
from store.casefile.build import redact
from store.db import session_scope
from store.links import is_short_code, make_ack_token, new_short_code, resolve_short, shorten
from store.redact import mask_text


async def test_an_alias_leads_to_its_signed_link_and_nothing_else_does(db_url):
    from api.app import create_app

    settings = get_settings()
    key, base = settings.signing_key(), settings.base_url
    ack = f"{base}/ack/{make_ack_token(key, 'callout-W1', 'p1')}"
    with session_scope() as s:
        short = shorten(s, key, base, {"a": ack, "elsewhere": "https://example.org/ack/abcdefghijklmnop",
                                       "not-a-link-path": f"{base}/console/desk"})
    alias = short["a"]
    assert alias.startswith(f"{base}/a/") and len(alias) == len(base) + 15 and is_short_code(key, alias[-12:])
    assert short["elsewhere"] == "https://example.org/ack/abcdefghijklmnop"  # not ours: kept as it is
    assert short["not-a-link-path"] == f"{base}/console/desk"
    with session_scope() as s:
        assert resolve_short(s, key, alias[-12:]) == httpx.URL(ack).path
        assert resolve_short(s, key, new_short_code(key)) is None  # ours, but never stored
        assert resolve_short(s, "another key", alias[-12:]) is None

    app = create_app(temporal_client=object())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
        got = await web.get(f"/a/{alias[-12:]}")
        assert got.status_code == 303 and got.headers["location"] == httpx.URL(ack).path
        assert got.headers["cache-control"] == "no-store" and got.headers["referrer-policy"] == "no-referrer"
        page = await web.get(f"/a/{alias[-12:]}", follow_redirects=True)
        assert page.status_code == 200 and "确认" in page.text
        changed = alias[-12:-1] + ("x" if alias[-1] != "x" else "y")  # its last character changed (one in 64 ends in x)
        for bad in (new_short_code(key), "AAAAAAAAAAAA", "not-a-signed-link", changed):
            got = await web.get(f"/a/{bad}")
            assert got.status_code == 403 and "链接无效" in got.text, bad


def test_aliases_are_masked_limited_and_redacted_like_the_links(db_url):
    settings = get_settings()
    code = new_short_code(settings.signing_key())
    body = f"【叫应】…回复1或1234确认,或点击 https://yjj.qingxi.gov.cn/a/{code}"
    assert code not in masked_message(body) and "/a/********" in masked_message(body)
    assert code not in mask_text(body) and code not in redact(body)
    limits = LinkLimits(settings)
    assert limits._ours(limits.salts["/a/"], code) and not limits._ours(limits.salts["/a/"], "AAAAAAAAAAAA")


def test_housekeeping_forgets_aliases_older_than_any_link_they_lead_to(db_url):
    """The hourly housekeeping (api/feeds.py) drops aliases made before the longest link life (the contact
    confirmation link's 60 days here) and a day; a younger one, even of an expired ack link, stays."""
    from datetime import UTC, datetime, timedelta

    from api.feeds import prune_short_links
    from store.messages import ShortLink

    now = datetime.now(UTC)
    with session_scope() as s:
        for code, age in (("old-alias-01", timedelta(days=62)), ("young-alias1", timedelta(days=30)),
                          ("fresh-alias1", timedelta(0))):
            s.add(ShortLink(code=code, target="/ack/x", created_at=now - age))
    assert prune_short_links(get_settings()) == 1
    with session_scope(write=False) as s:
        assert s.get(ShortLink, "old-alias-01") is None
        assert s.get(ShortLink, "young-alias1") is not None and s.get(ShortLink, "fresh-alias1") is not None
