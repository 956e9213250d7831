"""The spot-check sweep (a Temporal Schedule): one spot check per real call-out of the settings' level or higher
that ended recently."""
from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.common import ACTIVITY
    from workflows.kit.names import Duty
    from workflows.spotcheck.models import Candidate, SpotCheckInput, SweepInput, SweepResult, check_id_for
from workflows.spotcheck.workflow import SpotCheckWorkflow


@workflow.defn
class SpotCheckSweepWorkflow:
    """Starts a spot check for every real call-out of the level or higher that ended recently."""

    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        found: list[Candidate] = await workflow.execute_activity(
            Duty.SPOTCHECK_CANDIDATES, inp.settings, result_type=list[Candidate], **ACTIVITY)
        out = SweepResult()
        for c in found:
            try:
                await workflow.start_child_workflow(
                    SpotCheckWorkflow.run,
                    SpotCheckInput(callout_id=c.callout_id, settings=inp.settings, version=inp.version,
                                   not_before=c.ended_at + inp.settings.delay),
                    id=check_id_for(c.callout_id), parent_close_policy=ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
                out.started.append(c.callout_id)
            except WorkflowAlreadyStartedError:  # started by an earlier sweep or by hand: nothing to do
                pass
        return out
