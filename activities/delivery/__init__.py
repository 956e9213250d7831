"""Delivery: every send goes through the outbox, exactly once, leaders first, within rate limits.

1. Rows are inserted by idempotency key (a retried activity finds them) and
   marked `sending` in one transaction *before* any gateway is asked, claimed by the
   activity attempt (`claim_by`, `claim_attempt`): a fencing token.
2. Each channel's gateway sends them behind a rate limit per account and channel, shared by
   every worker process (`send_rate` in the database: each send reserves the account's next
   slot); in front of it a queue per process ordered by priority, so a leader queued later
   overtakes everyone else still waiting in that process.
3. Just before asking a real gateway, the attempt marks the row (`gateway_at`) if it still
   owns it; right after, it records the result if it still owns it. The simulator's rows
   (nothing leaves the process) are recorded in one transaction at the end.

Two attempts of one activity never both ask the gateway for a message: a retry (Temporal
gave up on the first attempt's heartbeats, though it may still be alive, on a starved
machine) takes over the rows not yet at the gateway, so the stale attempt's mark fails and
it sends nothing more and records nothing; a row already at the gateway stays the stale
attempt's until it records the answer, or until the gateway's own timeout has surely passed
(`lease_s`), after which the retry asks the gateway what it knows (`reconcile`). A row the
gateway has is recorded, never sent again; a row it has not is sent now if the gateway's
word is final (Twilio; the simulator, whose network is the row itself), else reported as
failed (an IM robot: it cannot be asked). Either way the text sent is the row's, as first
rendered. A stale attempt ends with `Superseded` before it writes anything else.

Modules: outbox.py (the rows and their fencing), gate.py (rate limits), send.py (`deliver`).
"""
from __future__ import annotations

from activities.delivery.gate import PriorityGate, gate_for, rate_limit, reserve_slot, reset_gates
from activities.delivery.outbox import (
    REFUSED,
    Claim,
    Delivery,
    Outcome,
    Superseded,
    _begin_call,
    _claim,
    _record_results,
    _take_over,
)
from activities.delivery.send import deliver, lease_s

__all__ = ["REFUSED", "Claim", "Delivery", "Outcome", "PriorityGate", "Superseded", "_begin_call", "_claim",
           "_record_results", "_take_over", "deliver", "gate_for", "lease_s", "rate_limit", "reserve_slot",
           "reset_gates"]
