"""Gateways: one protocol (base.py), one adapter per provider."""
from __future__ import annotations

from activities.gateways.base import Gateway, OutgoingMessage, SendResult

_gateways: dict[str, Gateway] = {}


def get_gateway(name: str | None = None) -> Gateway:
    from config import get_settings

    settings = get_settings()
    name = name or settings.gateway
    if name not in _gateways:
        if name == "simulator":
            from activities.gateways.simulator import SimulatorGateway

            _gateways[name] = SimulatorGateway(settings)
        elif name == "twilio":
            from activities.gateways.twilio import TwilioGateway  # type: ignore[import-not-found]

            _gateways[name] = TwilioGateway(settings)
        else:
            raise ValueError(f"unknown gateway {name!r}: simulator or twilio")
    return _gateways[name]


def reset_gateways() -> None:
    _gateways.clear()


__all__ = ["Gateway", "OutgoingMessage", "SendResult", "get_gateway", "reset_gateways"]
