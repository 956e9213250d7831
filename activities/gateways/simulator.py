"""The simulator gateway (embedded default): the outbox is the phone network.

Sending records the message; replies, keypresses and failures are played later
through the same API code paths a real gateway's webhooks use
(`POST /api/simulator/messages/{id}/{outcome}`). Latency and a failure rate are
configurable (YINGJI_SIMULATOR_LATENCY_MS, YINGJI_SIMULATOR_FAILURE_RATE).
"""
from __future__ import annotations

import asyncio
import random

from activities.gateways.base import OutgoingMessage, SendResult


class SimulatorGateway:
    name = "simulator"
    resend_unknown = True  # see reconcile

    def __init__(self, settings) -> None:
        self.latency = settings.simulator_latency_ms / 1000
        self.failure_rate = settings.simulator_failure_rate

    async def send(self, msg: OutgoingMessage) -> SendResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.failure_rate and random.random() < self.failure_rate:
            return SendResult(status="failed", provider_id=f"SIM{msg.outbox_id}", error="simulated failure")
        return SendResult(status="sent", provider_id=f"SIM{msg.outbox_id}")

    async def reconcile(self, msg: OutgoingMessage) -> SendResult | None:
        # The simulator's "network" is the outbox row itself: a row left in `sending` (a worker
        # killed mid-send) was delivered nowhere, so delivering it now sends nothing twice:
        # it is the same row. (An IM robot cannot be asked; its rows are reported failed.)
        return None
