"""六问 spot checks 抽查 after an orange-or-higher call-out (seed 000 任务 14).

A sweep (a Temporal Schedule, `SpotCheckSweepWorkflow`) finds real call-outs of the
settings' level or higher that ended, and starts one `SpotCheckWorkflow` per call-out
(its id derives from the call-out's: a second sweep starts nothing). The check draws a
random sample of the village flood-control persons who acknowledged, and calls each
through the shared escalation interpreter: a voice call asking the six questions (one
key per question, 1 yes 2 no), then an SMS with a signed form link. Answers arrive as
the `answer` update (from the voice menu, the form, or a duty officer who asked by
phone); each is recorded in the audit chain. A "no" opens a follow-up for the town: a
tracked item with a deadline whose responsible person (the town head) must acknowledge
through the interpreter and that is resolved by a duty officer or the town.

The package: `models` (what it is started with, what it shows, what its activities take, what people
send), `rules` (who may answer or resolve, and when; one rule per step), `workflow` (the check), `sweep`
(the Schedule that starts the checks). Its activities are in activities/duty/spotcheck.py; answers given after
it ended are recorded by store/answers.py with the same `answer_refusal`.
"""
from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # one copy of the messages, inside and outside the sandbox
    from workflows.spotcheck.models import (  # noqa: F401 (the API, the activities and the store import them from here)
        CLOSE_AFTER_ANSWERS, AnswerIn, Candidate, Channel, FollowupView, Opened, OpenRequest, PersonView, RecordRequest,
        ResolveIn, Sampled, SpotCheckInput, SpotCheckView, SweepInput, SweepResult, check_id_for, late_answer_payload)
    from workflows.spotcheck.rules import DUTY_ROLES, RULES, Check, answer_refusal  # noqa: F401
from workflows.spotcheck.workflow import FollowupEpisode, SpotCheckWorkflow  # noqa: F401
from workflows.spotcheck.sweep import SpotCheckSweepWorkflow  # noqa: F401
