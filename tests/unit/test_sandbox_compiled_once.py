"""worker.py `CompiledOnce`: the sandbox's instance, as the SDK makes it, with its code snippets compiled once. If the
SDK's runner stops making `_Instance` (the class `CompiledOnce` extends), these fail: the worker would otherwise run
the SDK's old instance under a new SDK."""
from __future__ import annotations

import temporalio.workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
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
    assert type(theirs) is _Instance  # what CompiledOnce extends is what the SDK's runner makes
    ours = worker.SandboxValidatedOnce().create_instance(det)
    assert isinstance(ours, worker.CompiledOnce) and isinstance(ours, _Instance)

    before = worker._compiled.cache_info()
    contexts = [ours.get_serialization_context(None) for _ in range(5)]
    after = worker._compiled.cache_info()
    assert contexts == [theirs.get_serialization_context(None)] * 5  # the same answer as the SDK's instance
    assert after.hits - before.hits >= 4 and after.currsize - before.currsize <= 1  # compiled once, then reused


def test_the_workers_runner_is_the_sandbox():
    """(the speed-up keeps the sandbox: every workflow still runs in it, with its restrictions)"""
    assert isinstance(worker.SandboxValidatedOnce(), SandboxedWorkflowRunner)
    assert worker.SandboxValidatedOnce().restrictions is SandboxedWorkflowRunner().restrictions
