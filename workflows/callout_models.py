"""The call-out's data (its workflows' inputs, their activities' requests and results), apart from the
workflows (workflows/callout.py), which import it passed through the sandbox: a module the sandbox runs anew
for every workflow instance rebuilt these pydantic classes each time (a tenth of the worker's CPU while a
10,000-person call-out started its 20 shards)."""
from __future__ import annotations

import base64
import zlib
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from definitions.schema.callout import CalloutPlan
from definitions.schema.common import Level
from workflows.escalation import Ack, Record, Report, Send

SHARD_SIZE = 500
"""Persons per shard, up to SHARD_SIZE × MOST_SHARDS persons; past that the shards grow (`shard_size_for`)."""
MOST_SHARDS = 67
"""Shards of a call-out at most, while they stay within LARGEST_SHARD: at 100,000 persons 67 shards of 1,493, where
there were 200 of 500. Each shard pays for every group of answers that reaches it (a signal, a workflow task, a
local activity), whatever the group's size: fewer, larger shards take the same answers in fewer, larger groups.
At 0.8 CPU that took the 100,000 first notifications from 423-433 s to 173-218 s; 100 shards of 1,000 took
297-310 s, 50 of 2,000 more than the machine could carry (issue 25, docs/performance.md "Fewer, larger shards")."""
LARGEST_SHARD = 1500
"""A shard's targets come back from `callout.load_shard` in one payload, ~650 bytes a target with a deputy, a
superior and a duty contact: ~1 MB for 1,500, under Temporal's 2 MB a payload. Past LARGEST_SHARD × MOST_SHARDS
persons there are more shards rather than larger ones."""


def shard_size_for(persons: int, least: int = SHARD_SIZE) -> int:
    """How many persons a shard of a call-out of `persons` holds: `least`, or more when that would make over
    MOST_SHARDS shards, up to LARGEST_SHARD."""
    return max(least, min(LARGEST_SHARD, -(-persons // MOST_SHARDS)))


RECALL_ENDED = ("该部分叫应已结束,请电话联系并代为确认 / this part of the call-out has ended: call the person and "
                "confirm on their behalf")
RECALL_SETTLED = "该对象已应答或已取消,无需重新呼叫 / already acknowledged or canceled"


class WarningInfo(BaseModel):
    warning_id: str
    identifier: str
    msg_type: str = "Alert"
    level: Level
    category: str = ""
    event: str = ""
    headline: str = ""
    area_descs: list[str] = Field(default_factory=list)
    town_ids: list[str] = Field(default_factory=list)


class NightHours(BaseModel):
    """Night hours in local time; the offset is taken from the configured timezone when the call-out starts.
    Start after end spans midnight (22:00–07:00); equal start and end: no night hours."""

    utc_offset_minutes: int = 480  # Asia/Shanghai
    start: str = "22:00"
    end: str = "07:00"

    @classmethod
    def for_zone(cls, tz: str, start: str, end: str, at: datetime) -> "NightHours":
        offset = at.astimezone(ZoneInfo(tz)).utcoffset() or timedelta(0)
        return cls(utc_offset_minutes=int(offset.total_seconds() // 60), start=start, end=end)

    def contains(self, at: datetime) -> bool:
        local = (at + timedelta(minutes=self.utc_offset_minutes)).time()
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        return (start <= local or local < end) if start > end else (start <= local < end)


class CalloutInput(BaseModel):
    callout_id: str
    warning: WarningInfo
    plan: CalloutPlan
    plan_version: str
    night: NightHours = Field(default_factory=NightHours)
    drill: bool = False
    shard_size: int = SHARD_SIZE


class ResolveRequest(BaseModel):
    callout_id: str
    plan: CalloutPlan
    warning: WarningInfo
    tiers: list[str]
    first_shard: int
    shard_size: int = Field(description="the least persons a shard holds (`shard_size_for`)")


class ShardInfo(BaseModel):
    index: int
    count: int


class ResolveResult(BaseModel):
    shards: list[ShardInfo]
    total: int


class ShardInput(BaseModel):
    callout_id: str
    shard: int
    plan: CalloutPlan
    plan_version: str
    warning: WarningInfo
    night: NightHours
    drill: bool = False


class SendRef(BaseModel):
    """A send by reference: the flush reads the address, the name and the priority from the shard's
    stored targets (`callout_target.spec`), so a 500-person batch does not carry them all."""

    key: str
    target: str
    person: str
    channel: str
    purpose: str = "notify"

    @classmethod
    def of(cls, send: Send) -> "SendRef":
        return cls(key=send.key, target=send.target_key, person=send.person_id, channel=send.channel,
                   purpose=send.purpose)


class FlushBody(BaseModel):
    """A flush's sends (by reference) and records, packed (zlib, base64) into the activity input: a
    500-person batch is 180-230 KB of repetitive JSON, 12-15 KB packed (Temporal warns past 512 KB,
    and every byte is decoded on the worker's event loop)."""

    refs: list[SendRef] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)

    def pack(self) -> str:
        return base64.b64encode(zlib.compress(self.model_dump_json().encode(), 6)).decode()

    @classmethod
    def unpack(cls, packed: str) -> "FlushBody":
        return cls.model_validate_json(zlib.decompress(base64.b64decode(packed)))


class FlushRequest(BaseModel):
    callout_id: str
    workflow_id: str
    run_id: str
    plan: CalloutPlan
    warning: WarningInfo
    drill: bool = False
    sends: list[Send] = Field(default_factory=list, description="whole sends (histories before `refs`)")
    records: list[Record] = Field(default_factory=list)
    refs: list[SendRef] = Field(default_factory=list, description="sends by reference to the stored targets")
    packed: str = Field(default="", description="a FlushBody, packed: refs and records")


class ShardEvents(BaseModel):
    acks: list[Ack] = Field(default_factory=list)
    reports: list[Report] = Field(default_factory=list)


class StopRequest(BaseModel):
    reason: str
    purpose: str = "cancel"  # cancel | update (lowered below the plan's level)


class ShardResult(BaseModel):
    counts: dict[str, int]


class CalloutEnd(BaseModel):
    callout_id: str
    workflow_id: str
    status: str
    reason: str = ""
    summary_to: list[str] = Field(default_factory=list)
    drill: bool = False


class CalloutSummary(BaseModel):
    status: str
    total: int = 0
    acknowledged: int = 0
    summary: dict = Field(default_factory=dict)
