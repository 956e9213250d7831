"""Effective configuration: environment variables with the prefix ``YINGJI_``.

One place for every setting; ``yingji config`` prints it with secrets masked.
Workflows never read this (they get what they need in their input).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YINGJI_", extra="ignore")

    data_dir: Path = Path("./.yingji")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in DATA_DIR. PostgreSQL: postgresql+psycopg://…"
    )
    temporal_address: str | None = Field(default=None, description="host:port; unset = start the embedded dev server")
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    task_queue: str = "yingji"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    definitions_dir: Path = ROOT / "definitions"
    admin_token: SecretStr | None = None
    timezone: str = "Asia/Shanghai"
    public_base_url: str | None = Field(default=None, description="base URL of links in messages; default http://API_HOST:API_PORT")
    secret_key: SecretStr | None = Field(default=None, description="signs acknowledgement links; default: generated once into DATA_DIR")
    night_start: str = Field(default="22:00", description="night hours, local time (TIMEZONE): a call-out started "
                                                          "in them begins with a voice call; equal start and end: "
                                                          "no night hours")
    night_end: str = "07:00"
    max_body_bytes: int = 2_000_000
    db_pool_size: int = Field(default=10, ge=1, description="PostgreSQL: connections each process keeps open")
    db_max_overflow: int = Field(default=10, ge=0, description="PostgreSQL: connections a process may open beyond "
                                                               "the pool under load (README: the connection budget)")
    db_busy_timeout_ms: int = Field(default=30_000, description="SQLite: how long a write waits for the lock "
                                                                 "before it fails (and an activity is retried)")
    rate_login_per_min: int = Field(default=10, description="console login attempts per client address per minute")
    rate_ack_per_min: int = Field(default=60, description="requests per client address per minute to a signed link "
                                                           "(/ack/, /confirm/, /spotcheck/) whose signature is not ours")
    rate_link_per_token_per_min: int = Field(default=10, description="requests per minute to one validly signed link "
                                                                      "(whatever the client address)")
    trusted_proxies: str = Field(default="", description="comma-separated addresses or networks (CIDR) of reverse "
                                                         "proxies whose X-Forwarded-For/-Proto are believed; empty: none")
    header_timeout_s: float = Field(default=10.0, gt=0, description="time a client has to send a request's headers, "
                                                                    "from connecting or from its first byte")
    answer_wait_s: float = Field(default=2.0, ge=0, description="how long an SMS reply or a link's confirmation waits "
                                 "for its answer to reach the workflows before the request is answered as stored "
                                 "(api/services/answers/intake.py); it is on record either way")
    answer_retry_s: float = Field(default=15.0, gt=0, description="an answer stored but not processed for this "
                                  "long (its API process died, Temporal was down) is taken up again by any API process")
    answer_max_pending: int = Field(default=20000, ge=1, description="answers waiting to be stored by one API process "
                                    "past which it refuses more with 503 + Retry-After (the gateway sends them again)")

    # Gateways
    gateway: str = Field(default="simulator", description="simulator | twilio: the default of every channel below")
    gateway_sms: Literal["aliyun", "twilio", "simulator"] | None = Field(
        default=None, description="the SMS provider; default GATEWAY")
    gateway_voice: Literal["aliyun", "twilio", "simulator"] | None = Field(
        default=None, description="the voice provider; default GATEWAY")
    gateway_im: Literal["dingtalk", "robot", "simulator"] | None = Field(
        default=None, description="IM: dingtalk (personal work notifications 工作通知 to each person's DingTalk userid) "
                                  "| robot (the group robot at IM_WEBHOOK_URL) | simulator; default: robot when "
                                  "IM_WEBHOOK_URL is set, else the simulator")
    simulator_latency_ms: int = 0
    simulator_failure_rate: float = 0.0
    simulator_show_codes: bool = Field(default=False, description="print the login codes the simulator sends to this "
                                                                   "process's standard output (`yingji run` sets it: "
                                                                   "its terminal stands for the demo persons' phones)")
    demo_logins: bool = Field(default=False, description="offer on the login page a login as each role of the demo "
                                                         "district's duty roster, and show the simulator's login codes "
                                                         "there (`yingji run` sets it; only with the simulator gateway "
                                                         "and the demo district loaded)")
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_previous_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_api_base: str | None = Field(default=None, description="override of https://api.twilio.com (tests)")
    aliyun_access_key_id: str | None = Field(default=None, description="Aliyun RAM user's AccessKey ID (SMS and voice)")
    aliyun_access_key_secret: SecretStr | None = None
    aliyun_sms_sign_name: str | None = Field(default=None, description="the approved SMS signature 短信签名")
    aliyun_voice_show_number: str | None = Field(default=None, description="the caller number 被叫显号 bought with "
                                                                           "Aliyun voice")
    aliyun_sms_endpoint: str = "dysmsapi.aliyuncs.com"
    aliyun_voice_endpoint: str = "dyvmsapi.aliyuncs.com"
    aliyun_protocol: Literal["https", "http"] = Field(default="https", description="http only for the tests' fake")
    aliyun_callback_token: SecretStr | None = Field(default=None, description="the token in the receipt push URLs "
                                                    "(?token=…) configured in Aliyun's console: a push without it: 403")
    aliyun_rate_sms_per_s: float | None = Field(default=None, description="SendSms calls per second of the Aliyun "
                                                "account (default RATE_SMS_PER_S)")
    aliyun_rate_voice_per_s: float | None = Field(default=None, description="calls per second of the Aliyun account "
                                                  "(default RATE_VOICE_PER_S)")
    dingtalk_app_key: str | None = Field(default=None, description="the DingTalk internal app's AppKey (工作通知)")
    dingtalk_app_secret: SecretStr | None = None
    dingtalk_agent_id: str | None = Field(default=None, description="the app's AgentId")
    dingtalk_api_base: str = Field(default="https://oapi.dingtalk.com", description="override for the tests' fake")
    dingtalk_read_poll_s: float = Field(default=60, gt=0, description="how often the work notifications of the last "
                                        "day are asked for their read status (已读 is recorded as delivered)")
    im_webhook_url: str | None = None
    im_webhook_secret: SecretStr | None = None
    broadcast_gateway: Literal["simulator", "http"] = Field(
        default="simulator", description="应急广播 platform: simulator (plays locally, with a receipt) | http "
                                         "(the IP broadcast platform at BROADCAST_URL; docs/gateways.md)")
    broadcast_url: str | None = Field(default=None, description="the IP broadcast platform's API base URL")
    broadcast_secret: SecretStr | None = Field(default=None, description="shared HMAC-SHA256 secret: signs our "
                                               "requests and verifies the platform's receipts")
    broadcast_replay_window_s: int = Field(default=300, ge=10, description="a receipt whose timestamp is further "
                                           "than this from our clock is refused (403)")
    cityline_gateway: Literal["simulator", "http"] = Field(
        default="simulator", description="the city platform 市级报送通道 for reports upward: simulator (takes and signs "
                                         "at once) | http (the platform at CITYLINE_URL; activities/gateways/cityline.py)")
    cityline_url: str | None = Field(default=None, description="the city platform's API base URL")
    cityline_secret: SecretStr | None = Field(default=None, description="shared HMAC-SHA256 secret: signs our "
                                              "reports and verifies the platform's receipts")
    cityline_replay_window_s: int = Field(default=300, ge=10, description="a receipt whose timestamp is further "
                                          "than this from our clock is refused (403)")
    hotline_platform_url: str | None = Field(default=None, description="the hotline platform's base URL: 回访 posts "
                                                                      "each closed work order's result to <url>/results")
    hotline_secret: SecretStr | None = Field(default=None, description="the hotline platform's webhook secret "
                                                                       "(HMAC-SHA256 over timestamp + '.' + body)")
    hotline_window_s: int = Field(default=300, description="a webhook's timestamp may be this far from now")
    rate_voice_per_s: float = 1.0
    rate_sms_per_s: float = 10.0
    rate_im_per_s: float = 20.0
    workflow_deadlock_s: float = Field(
        default=8.0, description="how long a workflow task may run before the worker fails it as deadlocked "
                                 "(Temporal's Python SDK: 2 s, too short on a loaded machine: the task failed, "
                                 "was replayed from its whole history, took longer still, failed again)")

    # Feed polling of CAP sources
    cap_feeds: list[str] = Field(default_factory=list)
    cap_poll_interval_s: float = 60
    stale_warning_hours: float = Field(default=6, gt=0, description="a warning sent longer ago than this is old: the "
                                                                   "console asks for a confirmation before calling it out")
    audit_anchor_interval_s: float = Field(default=60, description="how often the heads of the audit chains that "
                                                                    "grew are anchored (detects a deleted chain tail)")
    run_scheduler: bool = Field(default=True, description="run the feed poller and audit anchors in this API process")
    gc_young_threshold: int = Field(default=20_000, ge=0, description="allocations between Python's collections of "
                                    "young objects in the API and the worker (see `tune_gc`); 0: CPython's defaults")
    malloc_arenas: int = Field(default=2, ge=0, description="most glibc malloc arenas in the API and the worker (see "
                               "`tune_malloc`); 0: glibc's default (8 per core), or MALLOC_ARENA_MAX if set")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        import ipaddress

        items = [v.strip() for v in value.split(",") if v.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an address or a network (CIDR); "
                                 "name each reverse proxy, e.g. 172.18.0.0/16,127.0.0.1") from None
        return ",".join(items)

    @field_validator("night_start", "night_end")
    @classmethod
    def _time_of_day(cls, value: str, info) -> str:
        from datetime import time

        try:
            time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{info.field_name.upper()}: {value!r} is not a time of day; write it as HH:MM, "
                             "e.g. 22:00") from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [v for v in self.trusted_proxies.split(",") if v]

    @property
    def sms_gateway(self) -> str:
        """The SMS provider in use (GATEWAY_SMS, else GATEWAY)."""
        return self.gateway_sms or self.gateway

    @property
    def voice_gateway(self) -> str:
        """The voice provider in use (GATEWAY_VOICE, else GATEWAY)."""
        return self.gateway_voice or self.gateway

    @property
    def im_gateway(self) -> str:
        """The IM adapter in use: GATEWAY_IM, else the robot when its URL is set, else the simulator."""
        return self.gateway_im or ("robot" if self.im_webhook_url else "simulator")

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'yingji.db').resolve()}"

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def signing_key(self) -> str:
        if self.secret_key:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret.key"
        if not path.exists():
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def masked(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif name == "database_url" and value and "@" in str(value):
                scheme, rest = str(value).split("://", 1)
                value = f"{scheme}://********@{rest.split('@', 1)[1]}"
            out[name] = str(value) if isinstance(value, Path) else value
        out["database (effective)"] = out["database_url"] or self.database
        out["gateways (effective)"] = f"sms={self.sms_gateway} voice={self.voice_gateway} im={self.im_gateway}"
        return out


class _SettingsOnce:
    """The process's settings, read from the environment once; `cache_clear()` has them read again.

    Not `functools.lru_cache`: a read that began before a `cache_clear()` could still be the one kept, when it
    ended while the next read was under way (the first to finish wins). Tests change the environment and clear
    between tests while a thread left from the test before reads the settings, and an API got settings without
    the admin token its test had just set (a 401 once in a full run, tests/security). Here a read is kept, and
    returned, only if no clear came after it began; else the settings are read again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Settings | None = None
        self._generation = 0

    def __call__(self) -> Settings:
        while (value := self._value) is None:
            generation = self._generation
            read = Settings()
            with self._lock:
                if self._generation == generation:  # else cleared meanwhile: read again
                    if self._value is None:
                        self._value = read
                    return self._value
        return value

    def cache_clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._value = None


get_settings = _SettingsOnce()


_gc_tuned = False


def tune_gc(settings: Settings | None = None) -> None:
    """Python's cycle collector for a long-running API or worker process, once it has started.

    Everything loaded at start-up (modules, definitions, the app's routes: most of a process's objects) is
    frozen out of the collector's scans (`gc.freeze`), and the young generation is collected every
    `GC_YOUNG_THRESHOLD` allocations instead of CPython's 700: a request to the API allocates a few thousand
    objects, so the collector ran several times per answer and scanned the long-lived ones again and again
    (bench/api_load.py, docs/performance.md "Where the CPU goes"). The older generations keep CPython's ratios, so
    cyclic garbage is still collected within a few million allocations. Once per process (tests start many apps)."""
    import gc

    global _gc_tuned
    threshold = (settings or get_settings()).gc_young_threshold
    if not threshold or _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)


M_ARENA_MAX = -8  # glibc's malloc.h


def tune_malloc(settings: Settings | None = None) -> bool:
    """At most `MALLOC_ARENAS` glibc malloc arenas in this process (mallopt M_ARENA_MAX; call before its threads
    start). glibc gives each new thread an arena of its own up to 8 per core, and the worker's threads (the
    providers' 32, asyncio's executor, Temporal's core) each kept freed memory in theirs (the worker's peak with
    and without: docs/performance.md "The worker's memory"). The environment's MALLOC_ARENA_MAX, when set, is glibc's
    own and wins. True if applied (not glibc, or 0: left alone)."""
    import ctypes
    import ctypes.util
    import os
    import platform

    arenas = (settings or get_settings()).malloc_arenas
    if not arenas or os.environ.get("MALLOC_ARENA_MAX") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


async def connect_temporal(settings: Settings | None = None, address: str | None = None):
    """A Temporal client with the pydantic data converter (workflow inputs are pydantic models)."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    settings = settings or get_settings()
    target = address or settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
    return await Client.connect(target, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter)
