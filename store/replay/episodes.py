"""The escalation episodes of the procedures other than the call-out, replayed as call-outs.

The reporting chain, the activation and the review run the same escalation interpreter as a call-out,
in episodes (an overdue deadline, a report's receipts, a trigger's call, an overdue summary, a task's
notice…), and record its steps under their own prefixes (`report.escalation.ack`,
`review.escalation.sent`, …: workflows/kit/events.py `episodes`). Each episode is replayed by
`replay_callout` itself, so "who had been called, who had answered and whose wait was open" means the
same thing for every procedure.
"""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from store.replay.callout import replay_callout
from store.replay.common import STATES, TERMINAL, EventLike, Row
from workflows.kit.events import GAP, Callout, Reporting, Review, Step

EPISODE_PREFIXES = tuple(p + "." for p in (Reporting.ESCALATION, Reporting.RECEIPT, Reporting.CALL, Review.ESCALATION))
_GAP = "." + GAP


def _as_callout(ev: EventLike, prefix: str, episode: str) -> Row:
    """An episode's event as a call-out shard's: its run key (workflow id + episode) is the shard's workflow id,
    so a send's step id names its target, policy step and round as a call-out's does."""
    step = ev.step_id
    if step.startswith("send/"):
        step = "send/" + step[5:].removeprefix(episode + "/")
    wid = f"{ev.workflow_id}/{episode}" if ev.workflow_id else episode
    return Row(ev.seq or 0, f"{Callout.EPISODE}." + ev.kind[len(prefix):], ev.at, ev.actor, ev.channel, step, wid,
               ev.payload)


def _by_episode(events: list[EventLike]) -> dict[str, list[Row]]:
    by_episode: dict[str, list[Row]] = {}
    for ev in events:
        prefix = next((p for p in EPISODE_PREFIXES if ev.kind.startswith(p)), None)
        if prefix is None and Step.k.episode in ev.payload and Step.k.target in ev.payload and ev.kind.count(".") >= 2:
            prefix = ev.kind.rsplit(".", 1)[0] + "."  # another procedure's episodes (e.g. a directive's follow-up)
        if prefix is None or ev.kind.endswith(_GAP):
            continue
        name = ev.payload.get(Step.k.episode) or prefix.rstrip(".")
        by_episode.setdefault(name, []).append(_as_callout(ev, prefix, name))
    return by_episode


def _plan(policy: Any) -> Any:
    """A call-out plan whose every tier (an episode's "tier" is its kind) waits as `policy` says."""
    return SimpleNamespace(tiers=[SimpleNamespace(id=t, policy="p") for t in ("rcpt", "overdue", "call", "unit")],
                           policies={"p": policy})


def replay_episodes(events: list[EventLike], at: datetime, policies: dict[str, Any] | None) -> dict[str, Any]:
    """Replay every escalation episode of a subject; targets of all episodes together, tier = the episode."""
    counts = dict.fromkeys(STATES, 0)
    per_tier: dict[str, dict[str, int]] = {}
    targets: list[dict[str, Any]] = []
    deadlines: list[dict[str, Any]] = []
    known = policies is not None
    for name, rows in _by_episode(events).items():
        policy = (policies or {}).get(name)
        if policy is None and known:
            known = False  # an episode whose policy is not known: its deadlines are not either
        st = replay_callout(rows, at, _plan(policy) if policy is not None else None)
        if not st["events_applied"]:
            continue
        per_tier[name] = st["counts"]
        for s_, n in st["counts"].items():
            counts[s_] += n
        for t in st["targets"]:
            targets.append({**t, "tier": name, "episode": name})
        deadlines += [{**d, "episode": name} for d in st["deadlines"]]
    total = sum(counts.values())
    deadlines.sort(key=lambda d: d["due"])
    return {"counts": counts, "per_tier": per_tier, "targets": targets, "deadlines": deadlines,
            "deadlines_known": known, "total": total, "acknowledged": counts["acknowledged"],
            "open": total - sum(counts[s] for s in TERMINAL)}
