"""The worker: connects to Temporal and registers every workflow and activity."""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from types import CodeType
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance as _SandboxInstance  # (LeanInstance: the SDK's own)

from activities import all_activities
from activities.heartbeat import HeartbeatInterceptor
from config import connect_temporal, get_settings, tune_gc, tune_malloc
from store.db import migrate
from workflows import all_workflows

log = structlog.get_logger("yingji.worker")


def tolerate_slow_workflow_tasks(worker: Worker, seconds: float) -> None:
    """The SDK fails a workflow task that has not yielded within 2 s (TMPRL1101), and has no setting for
    it but `debug_mode`, which turns the check off and is not for production. On a starved machine
    a shard's task over 2 s is slow, not stuck: failing it evicts the workflow, whose replay of its
    whole history takes longer still, and a cancelled call-out stayed running until a restart. Here the
    limit is `seconds`, under the workflow task timeout (10 s) that Temporal retries on."""
    inner = getattr(worker, "_workflow_worker", None)
    if inner is None or not hasattr(inner, "_deadlock_timeout_seconds"):
        raise RuntimeError("temporalio changed: the workflow deadlock timeout is not where it was (worker.py)")
    inner._deadlock_timeout_seconds = seconds


_validated: set[type] = set()  # workflow classes this process has validated in the sandbox


class SandboxValidatedOnce(SandboxedWorkflowRunner):
    """The sandbox, as the SDK's default, but each workflow class validated (a trial instance created in the
    sandbox, its imports checked) once per process rather than at every worker built: the classes do not change
    within a process, and the tests build a worker per test (about half a second of CPU each, all 16 classes).
    Its instances are the SDK's, less two costs per payload (`LeanInstance`)."""

    def prepare_workflow(self, defn) -> None:
        if defn.cls not in _validated:
            super().prepare_workflow(defn)
            _validated.add(defn.cls)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return LeanInstance(det, self.runner_class, self.restrictions)


class LeanInstance(_SandboxInstance):
    """A workflow instance in the sandbox, as the SDK's (the workflow's code runs in the sandbox, with its
    restrictions), less two costs of the SDK's that the worker paid per payload (py-spy at 100,000 persons,
    issue 25: the serialization context lookups alone were 10 % of the worker's CPU):

    - each snippet the SDK runs in the sandbox (`exec` of a string: to activate the workflow, to find a payload's
      serialization context) is compiled once per process, not at every call;
    - a payload's serialization context is asked of the workflow's instance directly (0.6 us), not through a
      snippet run in the sandbox with its importer applied (40 us, 23 once compiled): the SDK's lookup reads the
      workflow's pending commands and builds a context from them, and imports nothing."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._in_sandbox = self.globals_and_locals.get("__temporal_in_sandbox")
        if not callable(getattr(self._in_sandbox, "get_serialization_context", None)):
            raise RuntimeError("temporalio changed: the sandbox's instance is not where it was (worker.py LeanInstance)")

    def _run_code(self, code: str | CodeType, **extra_globals: Any) -> None:
        super()._run_code(_compiled(code) if isinstance(code, str) else code, **extra_globals)

    def get_serialization_context(self, command_info):  # type: ignore[no-untyped-def]
        return self._in_sandbox.get_serialization_context(command_info)


@functools.cache
def _compiled(code: str) -> CodeType:
    return compile(code, "<workflow sandbox>", "exec")


if not callable(getattr(_SandboxInstance, "_run_code", None)):
    raise RuntimeError("temporalio changed: the sandbox's instance runs its code elsewhere (worker.py LeanInstance)")


def build_worker(client: Client, task_queue: str | None = None, **options: Any) -> Worker:
    """The worker of every workflow and activity; `options` for Temporal's Worker on top (tests)."""
    worker = Worker(
        client,
        task_queue=task_queue or get_settings().task_queue,
        workflows=all_workflows(),
        activities=all_activities(),
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=64),
        max_concurrent_activities=64,
        interceptors=[HeartbeatInterceptor()],  # a killed worker's activities are retried within seconds
        workflow_runner=SandboxValidatedOnce(),
        **options,
    )
    tolerate_slow_workflow_tasks(worker, get_settings().workflow_deadlock_s)
    return worker


async def run_worker(stop: asyncio.Event | None = None) -> None:
    settings = get_settings()
    tune_malloc(settings)  # before the threads start
    migrate()
    client = await connect_temporal(settings)
    worker = build_worker(client)
    tune_gc(settings)  # after the workflows and activities are loaded
    log.info("worker started", task_queue=settings.task_queue, temporal=settings.temporal_address)
    async with worker:
        await (stop or asyncio.Event()).wait()


def main() -> None:
    try:
        asyncio.run(run_worker())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
