"""The escalation interpreter, shared by every procedure.

`Escalation` runs the steps of a `Policy` (definitions/schema/escalation.py) for
many targets at once: it is a pure, deterministic state machine that a workflow
drives. `advance(now)` runs every target that is not waiting until it waits or
ends and returns what to send and what to record; `acknowledge()` and `report()`
take answers and gateway reports; `next_deadline()` is the one timer the host
workflow needs for all its targets. `drive()` is that host loop, written once.

The package: `model` (targets, sends, records, answers, reports: the messages, and a target's
state), `interpreter` (`Escalation`, the steps), `host` (`drive`, the inbox, late answers). Every
name is imported from here, `workflows.escalation`, as the workflows import it (passed through
their sandbox: one copy of the messages).
"""
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.escalation import Policy, Step  # noqa: F401
    from workflows.escalation.model import (  # noqa: F401
        FAILED_STATUSES, TARGET, TERMINAL_STATES, Ack, Actions, Contact, FlushResult, Recall, RecallResult, Record, Report, Send, Target, TargetState,
        late_step, state_after)
    from workflows.escalation.interpreter import Escalation  # noqa: F401
    from workflows.escalation.host import (  # noqa: F401
        ANSWERS_AHEAD, LATE_ANSWERS, LATE_EPISODES, RECALL, STORED_FIRST, EpisodeLike, Inbox, drive, late_answers,
        record_late, record_late_answers)
