"""Replay: the state of a call-out, a reporting chain, an activation or a review at any instant,
reconstructed from its audit events alone (the audit chain is what lasts after Temporal has deleted
the histories and whatever the read model says).

One module per procedure (callout, reporting, activation, review), the escalation episodes every
procedure but the call-out replays as call-outs (episodes), reading events from the database and
caching them (load), and what they share (common). Kinds and payload keys are read through
workflows/kit/events.py. The names below are the package's public ones (api/, activities/, tests).
"""
from store.replay.activation import DUE_KEYS, ITEM_KINDS, ITEM_OPENED, fold_activation, replay_activation
from store.replay.callout import deadline_from_attempts, policy_waits, replay_callout, send_round
from store.replay.common import (
    ANSWERED,
    FAILED,
    NEUTRAL_KINDS,
    STATES,
    TERMINAL,
    EventLike,
    Row,
    jsonable,
    kind_of_subject,
    zh_number,
)
from store.replay.episodes import EPISODE_PREFIXES, replay_episodes
from store.replay.load import EventCache, load_events
from store.replay.reporting import replay_reporting
from store.replay.review import replay_review
from store.replay.workorder import replay_workorder

__all__ = ["ANSWERED", "DUE_KEYS", "EPISODE_PREFIXES", "FAILED", "ITEM_KINDS", "ITEM_OPENED", "NEUTRAL_KINDS", "STATES",
           "TERMINAL", "EventCache", "EventLike", "Row", "deadline_from_attempts", "fold_activation", "jsonable",
           "kind_of_subject", "load_events", "policy_waits", "replay_activation", "replay_callout", "replay_episodes",
           "replay_reporting", "replay_review", "replay_workorder", "send_round", "zh_number"]
