"""The city line 市级报送通道: the city emergency management bureau's platform (市应急管理局值班室) that takes the
district duty office's verbal and written reports, and the province's for major events, as JSON over HTTP.

``YINGJI_CITYLINE_GATEWAY`` chooses ``simulator`` (the default: accepts at once, with its receipt) or ``http``
(the platform at ``YINGJI_CITYLINE_URL``). The protocol, every request signed with ``YINGJI_CITYLINE_SECRET``:

- ``POST {url}/reports`` with ``{report_id, version, to, kind, label, incident_id, title, text, at, drill}``: the
  platform answers ``{receipt_id, status}``. ``(report_id, version)`` is the idempotency key: one version of one
  report is taken once.
- ``GET {url}/reports?report_id=…&version=…``: what the platform holds for that version, ``404`` if nothing.
- headers ``X-Cityline-Timestamp`` (unix seconds) and ``X-Cityline-Signature`` = hex HMAC-SHA256 of the timestamp
  followed by the body's bytes (empty for a GET); the platform signs its receipts (签收) to
  ``POST /api/webhooks/cityline`` the same way.

A retried activity never posts twice: when an earlier try may have reached the platform it asks first.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import httpx

from activities.gateways.hmac_scheme import CITYLINE

TS_HEADER, SIG_HEADER = CITYLINE.ts_header, CITYLINE.sig_header
sign, signature_ok, signed_headers = CITYLINE.sign, CITYLINE.signature_ok, CITYLINE.headers


@dataclass(frozen=True)
class CityReport:
    report_id: str  # <incident id>/<seq> or <incident id>/verbal
    version: int
    to: str  # the recipient's id in the rules (city_duty, province_duty)
    kind: str  # verbal | written | followup | final
    label: str
    incident_id: str
    title: str
    text: str
    at: str
    drill: bool = False

    def body(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Taken:
    receipt_id: str
    status: str = "accepted"
    asked: bool = False  # found by asking (an earlier try had reached the platform)
    signed: bool = False  # the simulator signs for it at once (签收)


class CitylineError(Exception):
    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class SimulatorCityline:
    name = "simulator"

    async def post(self, req: CityReport, maybe_sent: bool = False) -> Taken:
        rid = "SIMC-" + hashlib.sha256(f"{req.report_id}/{req.version}/{req.to}".encode()).hexdigest()[:16]
        return Taken(receipt_id=rid, signed=True)


class HttpCityline:
    name = "http"

    def __init__(self, settings, *, timeout_s: float = 10.0) -> None:
        secret = settings.cityline_secret.get_secret_value() if settings.cityline_secret else ""
        if not (settings.cityline_url and secret):
            raise ValueError("the http city line gateway needs YINGJI_CITYLINE_URL and YINGJI_CITYLINE_SECRET")
        self.url, self.secret, self.timeout_s = settings.cityline_url.rstrip("/"), secret, timeout_s

    async def find(self, http: httpx.AsyncClient, req: CityReport) -> Taken | None:
        resp = await http.get(f"{self.url}/reports", params={"report_id": req.report_id, "version": str(req.version),
                                                             "to": req.to},
                              headers=signed_headers(self.secret, b""))
        if resp.status_code == 404:
            return None
        if not resp.is_success:
            raise CitylineError(f"city platform HTTP {resp.status_code} asking for {req.report_id} v{req.version}",
                                retry=resp.status_code >= 500 or resp.status_code == 429)
        rid, status = _receipt(resp)
        return Taken(receipt_id=rid, status=status, asked=True)

    async def post(self, req: CityReport, maybe_sent: bool = False) -> Taken:
        """Post one version of a report once; `maybe_sent`: an earlier try may have reached the platform: ask first."""
        body = req.body()
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                if maybe_sent and (found := await self.find(http, req)) is not None:
                    return found
                try:
                    resp = await http.post(f"{self.url}/reports", content=body, headers=signed_headers(self.secret, body))
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    raise CitylineError(f"city platform unreachable: {type(exc).__name__}") from exc
                except httpx.HTTPError as exc:
                    if (found := await self.find(http, req)) is not None:
                        return found
                    raise CitylineError(f"city platform: {type(exc).__name__}, and it holds no such report") from exc
                if resp.status_code >= 500:
                    if (found := await self.find(http, req)) is not None:
                        return found
                    raise CitylineError(f"city platform HTTP {resp.status_code}, and it holds no such report")
                if not resp.is_success:
                    raise CitylineError(f"city platform refused HTTP {resp.status_code}: {resp.text[:200]}",
                                        retry=resp.status_code == 429)
                rid, status = _receipt(resp)
                return Taken(receipt_id=rid, status=status)
        except httpx.HTTPError as exc:
            raise CitylineError(f"city platform: {type(exc).__name__}") from exc


def _receipt(resp: httpx.Response) -> tuple[str, str]:
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    rid = answer.get("receipt_id") if isinstance(answer, dict) else None
    if not isinstance(rid, str) or not rid:
        raise CitylineError(f"city platform answered without a receipt_id: {resp.text[:200]}")
    return rid, str(answer.get("status") or "accepted")
