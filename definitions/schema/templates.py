"""Provider templates: Aliyun sends only approved templates (短信模板, 语音文本转语音模板), never free text.

``definitions/gateways/aliyun.yaml`` names, for each message kind yingji sends by SMS, the approved template code
and which of the message's values fill each of the template's variables; for voice, the TTS templates of the
叫应 call (IvrCall: the message, the answers to keys 1 and 2, 9 repeats) and of a notice (SingleCallByTts).

The kinds are fixed by the code that sends them (`SMS_KINDS`, each with the values it offers); a message whose kind
has no entry of its own goes as `notice` (its whole text in one variable). The template codes are the office's own:
they are left empty in the shipped file, and with the Aliyun gateway `yingji definitions check` refuses every kind
without one (`template_errors`).
"""
from __future__ import annotations

from pydantic import Field

from definitions.schema.common import Strict

COMMON = ("text", "code", "link")
"""Values every message offers: its whole text, its reply code, its (short) acknowledgement link."""
LOGIN_CODE = "login.code"  # the message kind of the console's login code SMS (api/console/auth.py)
SMS_KINDS: dict[str, tuple[str, ...]] = {
    "callout.notify": ("event", "level", "headline", "area"),  # 叫应: asks for an answer
    "callout.escalate": ("event", "level", "headline", "area", "name"),  # 升级: someone did not answer
    "callout.inform": ("event", "level", "name"),  # 告知: the duty chief is told who never answered
    "callout.cancel": ("event", "level", "headline", "area"),  # 解除
    "callout.update": ("event", "level", "headline", "area"),  # 调整
    LOGIN_CODE: (),  # the console's login code (the code only)
    "notice": (),  # every other message: its whole text in one variable
}
VOICE_VALUES = ("text",)  # the voice text of the call


def values_of(kind: str) -> tuple[str, ...]:
    return COMMON + SMS_KINDS.get(kind, ())


class SmsTemplate(Strict):
    template_code: str = Field(default="", description="the approved template's code, SMS_… (empty: not yet approved)")
    params: dict[str, str] = Field(default_factory=dict, description="template variable -> the message's value")
    text: str = Field(default="", description="the template's wording as applied for (documentation)")


class VoiceTemplates(Strict):
    ivr_start: str = Field(default="", description="TTS template of the 叫应 call's message (IvrCall StartCode)")
    ivr_params: dict[str, str] = Field(default_factory=lambda: {"content": "text"})
    key_1: str = Field(default="", description="TTS template played after key 1 (已确认收到)")
    key_2: str = Field(default="", description="TTS template played after key 2 (已记录无法响应)")
    bye: str = Field(default="", description="TTS template played when no key came (ByeCode)")
    notice: str = Field(default="", description="TTS template of a call that asks for nothing (SingleCallByTts)")
    notice_params: dict[str, str] = Field(default_factory=lambda: {"content": "text"})


class ProviderTemplates(Strict):
    id: str
    provider: str = "aliyun"
    sms: dict[str, SmsTemplate] = Field(default_factory=dict)
    voice: VoiceTemplates = Field(default_factory=VoiceTemplates)


def template_errors(t: ProviderTemplates, line_of, *, sms: bool, voice: bool) -> list[tuple[list, str]]:
    """What the Aliyun gateway could not send: (path in the document, reason) for the document's `line_of`."""
    out: list[tuple[list, str]] = []
    for kind, spec in t.sms.items():
        if kind not in SMS_KINDS:
            out.append((["sms", kind], f"unknown message kind {kind!r}: one of {', '.join(SMS_KINDS)}"))
            continue
        for var, source in spec.params.items():
            if source not in values_of(kind):
                out.append((["sms", kind, "params", var], f"{kind} has no value {source!r}: one of "
                                                          f"{', '.join(values_of(kind))}"))
    if sms:
        for kind in SMS_KINDS:
            spec = t.sms.get(kind)
            if spec is None:
                out.append((["sms"], f"message kind {kind!r} has no Aliyun template (template_code, params)"))
            elif not spec.template_code.strip():
                out.append((["sms", kind], f"message kind {kind!r} has no template_code: apply for its template "
                                           f"in Aliyun's console and write its code (SMS_…) here"))
    for field in ("ivr_params", "notice_params"):
        for var, source in getattr(t.voice, field).items():
            if source not in VOICE_VALUES:
                out.append((["voice", field, var], f"a call has no value {source!r}: one of {', '.join(VOICE_VALUES)}"))
    if voice:
        for field in ("ivr_start", "key_1", "key_2", "bye", "notice"):
            if not getattr(t.voice, field).strip():
                out.append((["voice", field], f"voice.{field} has no TTS template code (TTS_…)"))
    return out
