"""How the platforms we exchange JSON with sign a request: hex HMAC-SHA256 with a shared secret over a timestamp
(unix seconds, its own header) and the body's bytes, in a signature header. The 应急广播 platform, the city line
and the hotline platform each name their headers (and the hotline puts a "." between timestamp and body); the
signing, the check and the headers are written once here. Receiving such a request (the window, the replay
memory) is api/services/signed_webhooks.py."""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class HmacScheme:
    ts_header: str
    sig_header: str
    separator: bytes = b""  # between the timestamp and the body

    def sign(self, secret: str, timestamp: str, body: bytes) -> str:
        return hmac.new(secret.encode(), timestamp.encode() + self.separator + body, hashlib.sha256).hexdigest()

    def signature_ok(self, secret: str, timestamp: str, body: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(secret, timestamp, body), signature.strip().lower())

    def headers(self, secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
        ts = str(int(now if now is not None else time.time()))
        return {self.ts_header: ts, self.sig_header: self.sign(secret, ts, body), "content-type": "application/json"}


BROADCAST = HmacScheme("X-Broadcast-Timestamp", "X-Broadcast-Signature")
CITYLINE = HmacScheme("X-Cityline-Timestamp", "X-Cityline-Signature")
HOTLINE = HmacScheme("X-Hotline-Timestamp", "X-Hotline-Signature", separator=b".")
