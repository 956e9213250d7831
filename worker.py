"""The worker: connects to Temporal and registers every workflow and activity."""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from types import CodeType
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance as _SandboxInstance  # (CompiledOnce: the SDK's own)

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
    Its instances compile the sandbox's few code snippets once (`CompiledOnce`)."""

    def prepare_workflow(self, defn) -> None:
        if defn.cls not in _validated:
            super().prepare_workflow(defn)
            _validated.add(defn.cls)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return CompiledOnce(det, self.runner_class, self.restrictions)


class CompiledOnce(_SandboxInstance):
    """A workflow instance in the sandbox, as the SDK's, but each snippet the SDK runs in it (to activate the
    workflow, and to find the serialization context of every payload an activation carries or a completion
    sends) compiled once per process instead of at every call: `exec` of a string compiles it each time, 17 of
    the 40 us a context lookup takes, and at 100,000 persons the lookups alone were 10 % of the worker's CPU
    (py-spy, issue 25). The code run is the same; only its compilation is kept."""

    def _run_code(self, code: str | CodeType, **extra_globals: Any) -> None:
        super()._run_code(_compiled(code) if isinstance(code, str) else code, **extra_globals)


@functools.cache
def _compiled(code: str) -> CodeType:
    return compile(code, "<workflow sandbox>", "exec")


if not callable(getattr(_SandboxInstance, "_run_code", None)):
    raise RuntimeError("temporalio changed: the sandbox's instance runs its code elsewhere (worker.py CompiledOnce)")


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
