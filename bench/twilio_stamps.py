"""The tests' fake Twilio (tests/fakes/twilio_server.py) in a process of its own, for benchmarks that measure
each send as the gateway received it: the worker sends through the real `twilio` SDK to it, and the fake stamps
every request when it arrives (`Recorded.at`, `time.monotonic()`: one clock for every process of the machine).

A process of its own so that the stamps do not wait for the GIL of the bench (the API and the simulated
people). `with TwilioStamps() as fake: fake.env` gives the settings that point yingji at it;
`fake.stamps()` the creates received so far: (kind sms|voice, To, arrival time, HTTP status).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class TwilioStamps:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self) -> "TwilioStamps":
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.twilio_stamps"], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake Twilio process did not start")
        self.info = json.loads(line)
        return self

    def env(self, rate_per_s: float) -> dict[str, str]:
        """YINGJI_* settings for the worker: the Twilio gateway on both channels, the SDK pointed at the fake,
        the account's rate limits at `rate_per_s` (high: the bench measures yingji, not a Twilio account)."""
        return {"YINGJI_GATEWAY": "twilio", "YINGJI_TWILIO_ACCOUNT_SID": self.info["account_sid"],
                "YINGJI_TWILIO_AUTH_TOKEN": self.info["auth_token"],
                "YINGJI_TWILIO_FROM_NUMBER": self.info["from_number"], "YINGJI_TWILIO_API_BASE": self.info["base_url"],
                "YINGJI_PUBLIC_BASE_URL": "https://yingji.bench.example", "YINGJI_RATE_SMS_PER_S": str(rate_per_s),
                "YINGJI_RATE_VOICE_PER_S": str(rate_per_s)}

    def stamps(self) -> list[tuple[str, str, float, int]]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("stamps\n")
        self.proc.stdin.flush()
        return [tuple(r) for r in json.loads(self.proc.stdout.readline())]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> "TwilioStamps":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve() -> None:
    """The child: serve the fake until stdin closes; answer `stamps` with the creates received so far."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes.twilio_server import FakeTwilio

    fake = FakeTwilio().start()
    print(json.dumps({"base_url": fake.base_url, "account_sid": fake.account_sid, "auth_token": fake.auth_token,
                      "from_number": fake.from_number}), flush=True)
    for line in sys.stdin:
        if line.strip() == "stamps":
            print(json.dumps([(r.kind, r.one("To"), r.at, r.status) for r in fake.creates()]), flush=True)
    fake.stop()


if __name__ == "__main__":
    serve()
