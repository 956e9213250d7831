"""worker.py `LeanInstance`: the sandbox's instance, as the SDK makes it, with its code snippets compiled once and a
payload's serialization context asked of the workflow's instance directly. If the SDK's runner stops making
`_Instance` (the class `LeanInstance` extends), these fail: the worker would otherwise run the SDK's old instance under
a new SDK. (Every workflow test runs its workflows in `LeanInstance`: build_worker's runner.)"""
from __future__ import annotations

import pytest
import temporalio.workflow
from temporalio.api.enums.v1 import CommandType
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError, SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

import worker
from workflows.callout import CalloutShardWorkflow


def details():
    """The details the SDK's own validation creates an instance with (a trial run's, fake info)."""
    seen = []

    class Capture(worker.SandboxValidatedOnce):
        def create_instance(self, det):
            seen.append(det)
            return super().create_instance(det)

    SandboxedWorkflowRunner.prepare_workflow(Capture(), temporalio.workflow._Definition.must_from_class(CalloutShardWorkflow))
    return seen[0]


async def test_the_workers_sandbox_instance_is_the_sdks_with_its_snippets_compiled_once():
    det = details()
    theirs = SandboxedWorkflowRunner().create_instance(det)
    assert type(theirs) is _Instance  # what LeanInstance extends is what the SDK's runner makes
    before = worker._compiled.cache_info()
    ours = [worker.SandboxValidatedOnce().create_instance(det) for _ in range(3)]
    after = worker._compiled.cache_info()
    assert all(isinstance(o, worker.LeanInstance) and isinstance(o, _Instance) for o in ours)
    # each instance runs the same two snippets (import the class, create it): compiled once, then reused
    assert after.hits - before.hits >= 4 and after.currsize - before.currsize <= 2


async def test_a_payloads_serialization_context_is_the_one_the_sdks_instance_gives():
    det = details()
    theirs, ours = SandboxedWorkflowRunner().create_instance(det), worker.SandboxValidatedOnce().create_instance(det)
    asked = [None, CommandInfo(command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, command_seq=7),
             CommandInfo(command_type=CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION, command_seq=1)]
    for info in asked:
        assert ours.get_serialization_context(info) == theirs.get_serialization_context(info)
        assert ours.get_serialization_context(info) is not None


async def test_the_workflows_code_still_meets_the_sandboxs_restrictions():
    """(the speed-up keeps the sandbox: what a workflow may not call is still refused in it)"""
    ours = worker.SandboxValidatedOnce().create_instance(details())
    with pytest.raises(RestrictedWorkflowAccessError, match="datetime.datetime.now"):
        ours._run_code("with __temporal_importer.applied():\n  import datetime\n  datetime.datetime.now()\n",
                       __temporal_importer=ours.importer)
