"""The replay guard: every saved history of tests/workflows/histories/ replays on today's workflow code.

A deploy happens while call-outs, reporting chains and reviews run; a worker with changed workflow code
then replays their histories. A change that gives different commands (an activity, timer or child
workflow added, removed or moved) without `workflow.patched` breaks those running workflows; here it
fails the suite instead. README, "Changing a workflow safely"; the histories are made by
tests/workflows/histories/make_histories.py.
"""
from __future__ import annotations

import functools
import json
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from tests.helpers import replayer
from workflows import all_workflows

HISTORIES = Path(__file__).parent / "histories"
INDEX = json.loads((HISTORIES / "index.json").read_text(encoding="utf-8"))
PATCH = "replay-guard-demo"


def type_name(cls: type) -> str:
    return workflow._Definition.must_from_class(cls).name


def history(entry: dict) -> WorkflowHistory:
    return WorkflowHistory.from_json(entry["workflow_id"], (HISTORIES / entry["file"]).read_text(encoding="utf-8"))


async def replay_all(r: Replayer) -> dict[str, Exception | None]:
    """Every saved history through one replayer (one worker; a replayer per history costs seconds each):
    file -> its replay failure, or None."""
    entries = list(INDEX)

    async def histories():
        for e in entries:
            yield history(e)

    out: dict[str, Exception | None] = {}
    async with r.workflow_replay_iterator(histories()) as results:
        async for result in results:  # one at a time, in the order given
            e = entries[len(out)]
            assert result.history.workflow_id == e["workflow_id"]
            out[e["file"]] = result.replay_failure
    assert list(out) == [e["file"] for e in entries]
    return out


def registered_by_the_worker(monkeypatch) -> list[type]:
    """The workflow classes that worker.py's build_worker registers."""
    import worker

    got: dict = {}
    monkeypatch.setattr(worker, "Worker", lambda client, **kw: got.update(kw))
    monkeypatch.setattr(worker, "tolerate_slow_workflow_tasks", lambda *a: None)  # no real Worker here
    worker.build_worker(client=None, task_queue="inspect")  # type: ignore[arg-type]
    return list(got["workflows"])


def test_every_registered_workflow_type_has_a_saved_history(monkeypatch):
    registered = registered_by_the_worker(monkeypatch)
    assert {type_name(c) for c in registered} == {type_name(c) for c in all_workflows()}  # what the replays use
    saved = {e["workflow_type"] for e in INDEX}
    missing = sorted({type_name(cls) for cls in registered} - saved)
    assert not missing, (f"no saved history for {missing}: add a scenario to "
                         "tests/workflows/histories/make_histories.py and run it (README, 'Changing a workflow safely')")


def test_the_index_and_the_files_agree():
    files = {p.name for p in HISTORIES.glob("*.json")} - {"index.json"}
    assert files == {e["file"] for e in INDEX}
    for e in INDEX:
        h = history(e)
        started = h.events[0].workflow_execution_started_event_attributes
        assert started.workflow_type.name == e["workflow_type"], e["file"]
        # about 1 MB at most (an activation's activities each carry its whole view): split a longer scenario
        assert (HISTORIES / e["file"]).stat().st_size < 1_200_000, f"{e['file']}: split the scenario that made it"


async def test_every_saved_history_replays_on_todays_code():
    """Sandboxed, as the worker runs them."""
    failures = {f: repr(x)[:2000] for f, x in (await replay_all(replayer(*all_workflows()))).items() if x}
    assert not failures, ("these saved histories no longer replay: a change gives other commands than a running "
                          f"workflow recorded; guard it with workflow.patched (README): {failures}")


# ------------------------------------------------------------------ the guard catches what it is for


def changed(cls: type, *, patched: bool) -> type:
    """`cls` with one command added before everything it does: an activity call. With `patched`, the call
    is behind `workflow.patched(PATCH)`, as a safe change is written; without, as an unsafe one.

    An activity, not a timer: replay matches timers by their order, not their duration, so a timer put
    before a workflow's own first timer (the spot check waits before it starts) lines up with it and
    replays, rightly."""
    base_run = cls.run

    @functools.wraps(base_run)  # the same signature and type hints: the input decodes as before
    async def run(self, *args):
        if not patched or workflow.patched(PATCH):
            await workflow.execute_activity("replay_guard.extra_step", start_to_close_timeout=timedelta(seconds=10))
        return await base_run(self, *args)

    # the same name and module as `cls` (functools.wraps gave `run` its qualname and module): the SDK checks
    # that the run method is defined on the class it decorates
    sub = type(cls.__name__, (cls,), {"run": workflow.run(run), "__module__": cls.__module__})
    # sandboxed=False: the sandbox re-imports a workflow class from its module by name, which a class made here
    # is not; the determinism check compares the history's events with the commands, sandbox or not
    return workflow.defn(name=type_name(cls), sandboxed=False)(sub)


async def test_an_unpatched_command_change_fails_replay_and_a_patched_one_does_not():
    """Every saved history, replayed on its workflow with one extra activity call first: without a patch each must fail
    with a non-determinism error (this fails if the Replayer did not compare commands, or if a history were too
    short to show a change); behind workflow.patched each must replay."""
    unsandboxed = {"workflow_runner": UnsandboxedWorkflowRunner()}  # the changed classes are unsandboxed anyway
    unpatched = await replay_all(replayer(*(changed(c, patched=False) for c in all_workflows()), **unsandboxed))
    not_caught = {f: repr(x) for f, x in unpatched.items() if not isinstance(x, NondeterminismError)}
    assert not not_caught, f"an unpatched command change replayed without a non-determinism error: {not_caught}"

    patched = await replay_all(replayer(*(changed(c, patched=True) for c in all_workflows()), **unsandboxed))
    assert not {f: x for f, x in patched.items() if x}, "the same change behind workflow.patched must replay"

    plain = await replay_all(replayer(*all_workflows(), **unsandboxed))  # the control: unchanged code replays
    assert not {f: x for f, x in plain.items() if x}
