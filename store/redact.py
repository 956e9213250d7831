"""Text as it may appear in logs and audit payloads: phone numbers, tokens, signed links and
secrets masked. Used by the API's log hooks (api/security.py) and by delivery, whose gateway
errors can quote the number they failed on ("The 'To' number +86… is not valid")."""
from __future__ import annotations

import re
from collections.abc import Iterable

# E.164 numbers (+8613912345678, also URL-encoded as %2B…) and mainland mobiles with or without 86
_PHONE = re.compile(r"(?:(?:\+|%2[Bb])\d{7,15}|(?<!\d)(?:86)?1[3-9]\d{9})(?!\d)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s,;\"']+")
_TOKEN = re.compile(r"\byj_[A-Za-z0-9_-]{8,}")
# Signed one-time links: acknowledgement, contact confirmation, 六问 form, response proposal, and their short aliases
# (/a/…, in texts). Whoever holds one answers in its person's name, so its token is shown to nobody but that person.
ONE_TIME_LINK = re.compile(r"(/(?:ack|confirm|spotcheck|proposal|a)/)[A-Za-z0-9_.\-]{12,}")
ACK_LINK = ONE_TIME_LINK  # the old name
LINK_PREFIXES = ("/ack/", "/confirm/", "/spotcheck/", "/proposal/", "/a/")
_SECRET_QS = re.compile(r"(?i)(?<![\w])(token|code|csrf|signature|auth_token|password|secret)=([^&\s\"']+)")


def _mask_phone(m: re.Match) -> str:
    text = m.group(0)
    prefix = ""
    if text[:3].lower() == "%2b":
        prefix, text = "%2B", text[3:]
    elif text.startswith("+"):
        prefix, text = "+", text[1:]
    return prefix + "*" * max(len(text) - 4, 0) + text[-4:]


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with phone numbers (all but the last four digits), bearer and API tokens, signed
    one-time links, secret query parameters and the given secrets replaced."""
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "********")
    text = ONE_TIME_LINK.sub(r"\1********", text)
    text = _BEARER.sub(r"\1********", text)
    text = _TOKEN.sub("yj_********", text)
    text = _SECRET_QS.sub(r"\1=********", text)
    return _PHONE.sub(_mask_phone, text)


