"""Plan activation by response level 分级响应 (seeds 001, 003 篇三/篇四), one workflow per activation.

An authorised person activates a plan (definitions/plans/) at a level I–IV for an
incident. The workflow then, all through the shared escalation interpreter:

- convenes the HQ: the level's commander 指挥长 and deputies, the HQ members and the
  lead of every working group started at that level are called and must acknowledge
  (a silent commander is escalated to the deputy, then the superior);
- opens the level's standing tasks, each with its time limit from the moment it opens,
  and tracks them exactly like the commander's directives 指令 (督办反馈机制): the
  assignee is notified and acknowledges → a reminder before the limit → feedback
  (progress / done / blocked) → the commander accepts or returns it; past the limit
  without a done report the assignee is called again and then their superior, and an
  accepted late report keeps a late mark;
- force dispatch 力量调度 (seed 003 篇四): fire rescue drafts, emergency management
  approves — in a special period (汛期, 森林防火期; dates are data) only once the sector
  department has agreed — then orders go to the forces, each acknowledging, and the
  sector department is informed (报备);
- reinforcement requests to the city (experts, teams, supplies) are tracked to their
  answer; no answer in time and the duty chief is called to chase it;
- the level goes up or down (new commanders and groups called out, new tasks opened,
  tasks no longer needed closed, those stood down told); an authorised termination closes
  everything still open and starts the post-event review (PostEventReviewWorkflow, a child
  left running when this workflow ends).

People act through updates whose validators say who may act and in which order. Every
step is written to the audit chain under the subject ``activation/<activation id>``.
Long activations continue as new with their whole state.

The package: `messages` (what it is started with, what people send it, what it shows, what its
activities take), `state` (the state and its transitions), `rules` (who may do what and when, one rule
per step), `view` (the read model), `base` (what the steps share: the record request, whom it calls and
tells, the directory), the steps by concept — `levels` (the HQ, level changes, termination), `items`
(tasks and directives 督办), `dispatch` (力量调度), `reinforcement` — and `workflow`, which puts them
together on the kit (workflows/kit/) and runs the procedure. What it sends is worded in the plan (definitions/plans/,
`messages`); its activities are activities/activation.py; its events are read back by store/replay and
store/review.
"""
from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # one copy of the messages, inside and outside the sandbox
    from workflows.common import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, Event  # noqa: F401 (as the API imports them from here)
    from workflows.escalation import FlushResult  # noqa: F401
    from workflows.activation.messages import (  # noqa: F401
        REVIEW_WORKFLOW, ActivationInfo, ActivationInput, ActivationView, Actor, ConclusionIn, ConsultIn, DirectiveIn,
        ExpertMeetingIn,
        DispatchDecisionIn, DispatchIn, DispatchView, EpisodeKind, FeedbackIn, FlushRequest, GroupView, ItemIn,
        ItemReviewIn, LevelIn, Notice, NotifyRequest, OrderView, PersonAckIn, RecordRequest, ReinforceAnswerIn,
        ReinforceIn, ReleaseRequest, ReserveRequest, ReserveResult, ResolveRequest, ResolveResult, SeatView, TerminateIn, activation_id_of, subject_of, workflow_id_of)
    from workflows.activation.state import (  # noqa: F401
        KIND_ZH, OPEN, STATE_ZH, ActivationState, Answer, Consultation, Decision, DispatchedTeam, DispatchPlan, Feedback, Holder, Item,
        ItemState, LevelChange, ReinforcementRequest, level_zh)
    from workflows.activation.rules import RULES, Activation, refusal  # noqa: F401
from workflows.activation.workflow import PlanActivationWorkflow  # noqa: F401
