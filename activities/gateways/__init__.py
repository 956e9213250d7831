"""Gateways: one protocol (base.py), one adapter per provider, chosen per channel.

Each channel has its provider: SMS `YINGJI_GATEWAY_SMS` (aliyun | twilio | simulator), voice
`YINGJI_GATEWAY_VOICE` (the same), both defaulting to `YINGJI_GATEWAY`; IM `YINGJI_GATEWAY_IM` (dingtalk: personal
work notifications; robot: the group robot; simulator; default the IM robot webhook when `YINGJI_IM_WEBHOOK_URL`
is set, else the simulator). 应急广播 (area broadcasts, not persons) goes to `broadcast_gateway()`. Adapters are built once per process (they hold HTTP connection pools).
"""
from __future__ import annotations

from activities.gateways.base import Gateway, OutgoingMessage, SendResult, Throttled

_gateways: dict[str, Gateway] = {}
_broadcasts: dict[str, object] = {}


def get_gateway(name: str | None = None) -> Gateway:
    """The adapter called `name` (default: the configured SMS/voice gateway)."""
    from config import get_settings

    settings = get_settings()
    name = name or settings.gateway
    if name not in _gateways:
        if name == "simulator":
            from activities.gateways.simulator import SimulatorGateway

            _gateways[name] = SimulatorGateway(settings)
        elif name == "twilio":
            from activities.gateways.twilio import TwilioGateway

            _gateways[name] = TwilioGateway(settings)
        elif name == "im":
            from activities.gateways.im import ImRobotGateway

            _gateways[name] = ImRobotGateway(settings)
        elif name == "dingtalk":
            from activities.gateways.dingtalk import DingTalkGateway

            _gateways[name] = DingTalkGateway(settings)
        elif name == "aliyun_sms":
            from activities.gateways.aliyun_sms import AliyunSmsGateway

            _gateways[name] = AliyunSmsGateway(settings)
        elif name == "aliyun_voice":
            from activities.gateways.aliyun_voice import AliyunVoiceGateway

            _gateways[name] = AliyunVoiceGateway(settings)
        else:
            raise ValueError(f"unknown gateway {name!r}: simulator, twilio, aliyun (sms, voice) or robot (im)")
    return _gateways[name]


def gateway_for(channel: str) -> Gateway:
    """The adapter that sends on `channel` (sms | voice | im)."""
    from config import get_settings

    settings = get_settings()
    if channel == "im":
        return get_gateway({"robot": "im", "dingtalk": "dingtalk"}.get(settings.im_gateway, "simulator"))
    name = settings.voice_gateway if channel == "voice" else settings.sms_gateway
    return get_gateway(f"aliyun_{channel}" if name == "aliyun" else name)


def broadcast_gateway():
    """The 应急广播 platform's adapter (`YINGJI_BROADCAST_GATEWAY`: simulator or http; gateways/broadcast.py)."""
    from activities.gateways.broadcast import HttpBroadcast, SimulatorBroadcast
    from config import get_settings

    settings = get_settings()
    key = f"broadcast:{settings.broadcast_gateway}"
    if key not in _broadcasts:
        _broadcasts[key] = HttpBroadcast(settings) if settings.broadcast_gateway == "http" else SimulatorBroadcast()
    return _broadcasts[key]


def cityline_gateway():
    """The city platform's adapter (`YINGJI_CITYLINE_GATEWAY`: simulator or http; gateways/cityline.py)."""
    from activities.gateways.cityline import HttpCityline, SimulatorCityline
    from config import get_settings

    settings = get_settings()
    key = f"cityline:{settings.cityline_gateway}:{settings.cityline_url}"
    if key not in _broadcasts:
        _broadcasts[key] = HttpCityline(settings) if settings.cityline_gateway == "http" else SimulatorCityline()
    return _broadcasts[key]


def reset_gateways() -> None:
    _broadcasts.clear()
    _gateways.clear()


__all__ = ["Gateway", "OutgoingMessage", "SendResult", "Throttled", "broadcast_gateway", "cityline_gateway", "gateway_for", "get_gateway", "reset_gateways"]
