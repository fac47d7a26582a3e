"""The runner with in-memory steps: ordering, journal, resume, lock, rollback, cancel."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.credentials import Redactor
from installer.errors import EngineUnavailable, PrerequisiteError, StepFailed
from installer.events import Event
from installer.runner import (
    CancelToken,
    InstallPlan,
    Progress,
    RunLock,
    Runner,
    RunSummary,
    Step,
    StepContext,
    StepUpdate,
)
from installer.statedir import StateDir

SECRET = "hunter2-very-secret-value"


class Recorder:
    """What the steps did, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class MemoryStep(Step):
    """A step whose behaviour the test chooses."""

    def __init__(
        self,
        name: str,
        recorder: Recorder,
        *,
        done: str | None = None,
        fail: BaseException | None = None,
        rollback_fails: bool = False,
        read_only: bool = False,
        body: Callable[[StepContext], Iterator[StepUpdate]] | None = None,
    ) -> None:
        self._name = self.name = name
        self.title = f"Step {name}"
        self.read_only = read_only
        self.recorder = recorder
        self.done = done
        self.fail = fail
        self.rollback_fails = rollback_fails
        self.body = body

    def check(self, ctx: StepContext) -> str | None:
        self.recorder.calls.append(f"check:{self._name}")
        return self.done

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        self.recorder.calls.append(f"apply:{self._name}")
        yield f"{self._name} working"
        yield Progress(1, 2, "things", f"{self._name} half way")
        if self.body is not None:
            yield from self.body(ctx)
        if self.fail is not None:
            raise self.fail
        ctx.remember("applied", True)

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        self.recorder.calls.append(f"rollback:{self._name}")
        if self.rollback_fails:
            raise StepFailed("cannot undo", step=self._name)
        yield f"undoing {self._name}"


def make_plan(
    tmp_path: Path, steps: list[Step], identity: str = "plan-1", redactor: Redactor | None = None
) -> InstallPlan:
    return InstallPlan(
        steps=steps,
        state=StateDir(tmp_path / "state"),
        identity=identity,
        description="test install",
        redactor=redactor or Redactor(),
        result=lambda summary: {"run_id": summary.run_id, "changed": summary.changed_steps},
    )


def run_all(plan: InstallPlan, cancel: CancelToken | None = None) -> tuple[Runner, list[Event]]:
    runner = Runner(plan, cancel=cancel)
    events = list(runner.run())
    return runner, events


def types(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.type, e.step) for e in events]


def journal(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "state" / "journal.json").read_text())
    return data


def test_steps_run_in_order_and_the_run_is_recorded(tmp_path: Path) -> None:
    rec = Recorder()
    steps: list[Step] = [MemoryStep(n, rec) for n in ("a", "b", "c")]
    runner, events = run_all(make_plan(tmp_path, steps))

    assert rec.calls == ["check:a", "apply:a", "check:b", "apply:b", "check:c", "apply:c"]
    assert events[0].type == "run.started"
    assert events[-1].type == "run.finished" and events[-1].exit_code == 0
    assert [e.step for e in events if e.type == "step.finished"] == ["a", "b", "c"]
    progress = [e for e in events if e.type == "step.progress"]
    assert progress[0].current == 1 and progress[0].total == 2 and progress[0].unit == "things"
    assert runner.outcome is not None and runner.outcome.exit_code == 0
    assert runner.outcome.changed_steps == ["a", "b", "c"]

    record = journal(tmp_path)
    assert record["status"] == "finished"
    assert {k: v["status"] for k, v in record["steps"].items()} == dict.fromkeys("abc", "done")
    assert record["steps"]["b"]["data"] == {"applied": True}
    assert stat.S_IMODE((tmp_path / "state" / "journal.json").stat().st_mode) == 0o600

    result = json.loads((tmp_path / "state" / "result.json").read_text())
    assert result == {"run_id": runner.run_id, "changed": ["a", "b", "c"]}
    log = Path(events[-1].data["log_file"])
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "b working" in text and "run.finished" in text
    assert not (tmp_path / "state" / "apply.lock").exists()  # released


def test_events_serialise_as_ndjson(tmp_path: Path) -> None:
    _, events = run_all(make_plan(tmp_path, [MemoryStep("a", Recorder())]))
    for event in events:
        line = event.to_json()
        assert "\n" not in line
        decoded = json.loads(line)
        assert decoded["type"] == event.type and "ts" in decoded
    assert json.loads(events[-1].to_json())["exit_code"] == 0


def test_steps_already_done_are_skipped_and_a_rerun_says_nothing_changed(tmp_path: Path) -> None:
    rec = Recorder()
    steps: list[Step] = [
        MemoryStep("checks", rec, read_only=True, done="never asked"),
        MemoryStep("files", rec, done="files already match"),
        MemoryStep("verify", rec, read_only=True),
    ]
    runner, events = run_all(make_plan(tmp_path, steps))

    # read-only steps always run (their check is not consulted); the others are skipped
    assert rec.calls == ["apply:checks", "check:files", "apply:verify"]
    skipped = [e for e in events if e.type == "step.skipped"]
    assert [(e.step, e.message) for e in skipped] == [("files", "files already match")]
    assert events[-1].message == "nothing changed: the installation already matches the answers"
    assert runner.outcome is not None and runner.outcome.changed_steps == []


def test_a_failure_rolls_back_what_this_run_changed_in_reverse_order(tmp_path: Path) -> None:
    rec = Recorder()
    failure = StepFailed(
        "service codequal is unhealthy",
        step="c",
        command=["docker", "compose", "up"],
        returncode=1,
        log_tail=["line 1", "line 2"],
        hint="look at its logs",
    )
    steps: list[Step] = [
        MemoryStep("checks", rec, read_only=True),
        MemoryStep("a", rec),
        MemoryStep("skipped", rec, done="already fine"),
        MemoryStep("b", rec),
        MemoryStep("c", rec, fail=failure),
        MemoryStep("never", rec),
    ]
    runner, events = run_all(make_plan(tmp_path, steps))

    assert [c for c in rec.calls if c.startswith("rollback")] == [
        "rollback:c",
        "rollback:b",
        "rollback:a",
    ]
    assert "apply:never" not in rec.calls
    failed = next(e for e in events if e.type == "step.failed")
    assert failed.step == "c" and failed.data["log_tail"] == ["line 1", "line 2"]
    assert failed.data["command"] == ["docker", "compose", "up"]
    assert any(e.type == "rollback.started" for e in events)
    assert [e.step for e in events if e.type == "step.rolled_back"] == ["c", "b", "a"]
    rollback_lines = [e for e in events if e.data.get("phase") == "rollback"]
    assert [e.message for e in rollback_lines] == ["undoing c", "undoing b", "undoing a"]
    last = events[-1]
    assert last.type == "run.failed" and last.exit_code == 1
    assert "service codequal is unhealthy" in last.message
    assert last.data["rolled_back"] == ["c", "b", "a"] and last.data["hint"] == "look at its logs"
    assert runner.outcome is not None and runner.outcome.exit_code == 1
    record = journal(tmp_path)
    assert record["status"] == "failed"
    assert record["steps"]["c"]["status"] == "rolled_back"
    assert record["steps"]["skipped"]["status"] == "skipped"
    assert record["steps"]["never"]["status"] == "pending"
    assert not (tmp_path / "state" / "result.json").exists()


def test_a_failed_rollback_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    rec = Recorder()
    steps: list[Step] = [
        MemoryStep("a", rec),
        MemoryStep("b", rec, rollback_fails=True),
        MemoryStep("c", rec, fail=StepFailed("boom", step="c")),
    ]
    runner, events = run_all(make_plan(tmp_path, steps))
    assert [c for c in rec.calls if c.startswith("rollback")] == [
        "rollback:c",
        "rollback:b",
        "rollback:a",
    ]
    assert events[-1].exit_code == 1
    assert "rollback of b failed too" in events[-1].message
    assert journal(tmp_path)["status"] == "rollback_failed"
    assert runner.outcome is not None and runner.outcome.status == "rollback_failed"


class EngineStep(MemoryStep):
    """A step whose rollback needs the engine, which is gone."""

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        self.recorder.calls.append(f"rollback:{self._name}")
        raise EngineUnavailable("the Docker Engine at unix:///d.sock is not answering")
        yield "never"


def test_the_engine_gone_is_one_failure_exit_3_and_the_rerun_resumes(tmp_path: Path) -> None:
    rec = Recorder()
    gone = EngineUnavailable("the Docker Engine at unix:///d.sock is not answering", hint="start")
    steps: list[Step] = [
        EngineStep("a", rec),
        MemoryStep("b", rec),
        MemoryStep("c", rec, fail=gone),
    ]
    runner, events = run_all(make_plan(tmp_path, steps))
    assert [c for c in rec.calls if c.startswith("rollback")] == [
        "rollback:c",
        "rollback:b",
        "rollback:a",
    ]
    last = events[-1]
    assert last.exit_code == 3
    assert last.message.startswith("step c: the Docker Engine at unix:///d.sock")
    assert "failed too" not in last.message and "rolled back: c, b" in last.message
    assert last.data is not None and last.data["left_for_rerun"] == ["a"]
    assert "rollback_failed" not in last.data
    assert journal(tmp_path)["status"] == "interrupted"
    assert runner.outcome is not None and runner.outcome.status == "failed"

    rec2 = Recorder()
    again = [MemoryStep("a", rec2), MemoryStep("b", rec2), MemoryStep("c", rec2)]
    _, events = run_all(make_plan(tmp_path, again))
    assert events[0].data is not None and events[0].data["resumed"] is True
    assert rec2.calls == ["check:a", "apply:a", "check:b", "apply:b", "check:c", "apply:c"]
    assert events[-1].exit_code == 0


def test_a_rollback_that_loses_the_engine_after_another_failure_is_a_failure(
    tmp_path: Path,
) -> None:
    rec = Recorder()
    steps: list[Step] = [EngineStep("a", rec), MemoryStep("b", rec, fail=StepFailed("x", step="b"))]
    _, events = run_all(make_plan(tmp_path, steps))
    assert events[-1].exit_code == 1
    assert "rollback of a failed too" in events[-1].message
    assert journal(tmp_path)["status"] == "rollback_failed"


def test_exit_codes_follow_the_error(tmp_path: Path) -> None:
    rec = Recorder()
    steps: list[Step] = [
        MemoryStep("checks", rec, read_only=True, fail=PrerequisiteError("port 443 is taken")),
        MemoryStep("a", rec),
    ]
    _, events = run_all(make_plan(tmp_path, steps))
    assert events[-1].exit_code == 3 and "port 443 is taken" in events[-1].message
    assert "rollback.started" not in [e.type for e in events]  # nothing was changed


def test_an_unexpected_exception_is_a_clean_failure_with_the_traceback_in_the_log(
    tmp_path: Path,
) -> None:
    rec = Recorder()
    steps: list[Step] = [MemoryStep("a", rec), MemoryStep("b", rec, fail=KeyError("surprise"))]
    _, events = run_all(make_plan(tmp_path, steps))
    last = events[-1]
    assert last.exit_code == 1
    assert "unexpected error in step b: KeyError" in last.message
    assert "Traceback" not in last.message
    log = Path(last.data["log_file"]).read_text()
    assert "Traceback (most recent call last)" in log
    assert rec.calls[-1] == "rollback:a"


def test_secrets_are_redacted_in_events_journal_and_log(tmp_path: Path) -> None:
    def leaky(ctx: StepContext) -> Iterator[StepUpdate]:
        yield f"password is {SECRET}"
        ctx.log(f"raw command with {SECRET}")
        raise StepFailed(f"login with {SECRET} refused", step="a", log_tail=[f"tail {SECRET}"])

    plan = make_plan(
        tmp_path, [MemoryStep("a", Recorder(), body=leaky)], redactor=Redactor([SECRET])
    )
    _, events = run_all(plan)
    stream = "\n".join(e.to_json() for e in events)
    assert SECRET not in stream and "password is ***" in stream
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(), path


def test_cancel_stops_at_the_next_checkpoint_and_the_next_run_resumes(tmp_path: Path) -> None:
    rec = Recorder()
    cancel = CancelToken()

    def slow(ctx: StepContext) -> Iterator[StepUpdate]:
        cancel.cancel()  # the front end's Ctrl-C arrives while this step works
        ctx.sleep(30)  # returns at once and raises Interrupted
        yield "never reached"

    steps: list[Step] = [
        MemoryStep("a", rec),
        MemoryStep("b", rec, body=slow),
        MemoryStep("c", rec),
    ]
    runner, events = run_all(make_plan(tmp_path, steps), cancel=cancel)
    assert events[-1].type == "run.failed" and events[-1].exit_code == 130
    assert "resume at step b" in events[-1].message
    assert "rollback.started" not in [e.type for e in events]
    record = journal(tmp_path)
    assert record["status"] == "interrupted" and record["steps"]["b"]["status"] == "running"
    assert not (tmp_path / "state" / "apply.lock").exists()

    rec2 = Recorder()
    steps2: list[Step] = [MemoryStep(n, rec2) for n in ("a", "b", "c")]
    runner2, events2 = run_all(make_plan(tmp_path, steps2))
    assert runner2.resumed and runner2.run_id == runner.run_id
    assert rec2.calls == ["check:b", "apply:b", "check:c", "apply:c"]
    skipped = next(e for e in events2 if e.type == "step.skipped")
    assert skipped.step == "a" and skipped.message == "done by the interrupted run"
    assert events2[0].data["resume_at"] == "b"
    assert events2[-1].exit_code == 0
    # a resumed run appends to the same log file
    assert events2[-1].data["log_file"] == events[-1].data["log_file"]


def test_closing_the_event_stream_early_counts_as_an_interruption(tmp_path: Path) -> None:
    rec = Recorder()
    runner = Runner(make_plan(tmp_path, [MemoryStep("a", rec), MemoryStep("b", rec)]))
    stream = runner.run()
    for event in stream:
        if event.type == "step.started" and event.step == "b":
            break
    stream.close()  # type: ignore[attr-defined]
    assert runner.outcome is not None and runner.outcome.exit_code == 130
    assert journal(tmp_path)["status"] == "interrupted"
    assert not (tmp_path / "state" / "apply.lock").exists()


def test_a_changed_plan_reruns_every_step_but_keeps_their_rollback_data(tmp_path: Path) -> None:
    rec = Recorder()
    cancel = CancelToken()

    def interrupt(ctx: StepContext) -> Iterator[StepUpdate]:
        cancel.cancel()
        yield "stopping"

    run_all(
        make_plan(tmp_path, [MemoryStep("a", rec), MemoryStep("b", rec, body=interrupt)]), cancel
    )
    rec2 = Recorder()
    seen: dict[str, Any] = {}

    def look(ctx: StepContext) -> Iterator[StepUpdate]:
        seen.update(ctx.data)
        yield "looked"

    steps2: list[Step] = [MemoryStep("a", rec2, body=look), MemoryStep("b", rec2)]
    _, events = run_all(make_plan(tmp_path, steps2, identity="plan-2"))
    assert rec2.calls == ["check:a", "apply:a", "check:b", "apply:b"]
    assert seen == {"applied": True}  # step a's data from the interrupted run
    assert events[-1].exit_code == 0


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    rec = Recorder()
    first = Runner(make_plan(tmp_path, [MemoryStep("a", rec), MemoryStep("b", rec)]))
    stream = first.run()
    for event in stream:
        if event.type == "step.started":
            break
    second, events = run_all(make_plan(tmp_path, [MemoryStep("a", Recorder())]))
    assert events[-1].type == "run.failed" and events[-1].exit_code == 2
    assert f"PID {os.getpid()}" in events[-1].message
    assert second.outcome is not None and second.outcome.status == "refused"
    rest = list(stream)
    assert rest[-1].type == "run.finished"  # the first run was not disturbed
    assert journal(tmp_path)["status"] == "finished"


def test_a_lock_file_left_by_a_dead_process_is_broken(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    state = tmp_path / "state"
    state.mkdir()
    (state / "apply.lock").write_text(json.dumps({"pid": pid, "started_at": "earlier"}))
    _, events = run_all(make_plan(tmp_path, [MemoryStep("a", Recorder())]))
    assert events[0].data["stale_lock_pid"] == pid
    assert f"broke a stale lock of PID {pid}" in events[0].message
    assert events[-1].exit_code == 0


@contextlib.contextmanager
def _lock_held_by_another_process(
    lock_path: Path, command: str = "apply"
) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``RunLock(lock_path, command)`` until the block ends (it is
    killed then: the kernel drops its lock)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from installer.runner import RunLock;"
            f"RunLock(Path({str(lock_path)!r}), {command!r}).acquire();"
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    from installer.errors import RunInProgress

    lock_path = tmp_path / "apply.lock"
    with (
        _lock_held_by_another_process(lock_path) as holder,
        pytest.raises(RunInProgress, match=f"PID {holder.pid}"),
    ):
        RunLock(lock_path).acquire()
    # the kernel dropped the dead holder's lock: the next acquire works and names it stale
    lock = RunLock(lock_path)
    stale = lock.acquire()
    assert stale is not None and stale.pid == holder.pid
    lock.release()


def test_a_refused_run_names_what_holds_the_lock(tmp_path: Path) -> None:
    from installer.errors import RunInProgress

    lock_path = tmp_path / "apply.lock"
    with _lock_held_by_another_process(lock_path, "backup create"):
        with pytest.raises(RunInProgress, match="another backup create is running") as refused:
            RunLock(lock_path, "uninstall").acquire()
        assert "apply" not in refused.value.message


def _child_runs_until_killed(tmp_path: Path) -> int:
    """Fork a child that runs a plan and SIGKILLs itself inside step b; its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            rec = Recorder()

            def die(ctx: StepContext) -> Iterator[StepUpdate]:
                ctx.remember("made", "container-1")
                os.kill(os.getpid(), signal.SIGKILL)
                yield "unreachable"

            plan = make_plan(
                tmp_path,
                [MemoryStep("a", rec), MemoryStep("b", rec, body=die), MemoryStep("c", rec)],
            )
            for _ in Runner(plan).run():
                pass
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return status


def test_a_sigkilled_run_resumes_at_the_step_it_died_in(tmp_path: Path) -> None:
    status = _child_runs_until_killed(tmp_path)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    record = journal(tmp_path)
    assert record["status"] == "running" and record["steps"]["b"]["status"] == "running"
    assert (tmp_path / "state" / "apply.lock").exists()  # left behind by the dead run

    rec = Recorder()
    steps: list[Step] = [MemoryStep(n, rec) for n in ("a", "b", "c")]
    runner, events = run_all(make_plan(tmp_path, steps))
    assert runner.resumed
    assert rec.calls == ["check:b", "apply:b", "check:c", "apply:c"]
    assert events[0].data["stale_lock_pid"] is not None
    assert events[-1].exit_code == 0


def test_rollback_after_a_resume_undoes_what_the_killed_run_did(tmp_path: Path) -> None:
    _child_runs_until_killed(tmp_path)
    rec = Recorder()
    seen: dict[str, Any] = {}

    class Remembering(MemoryStep):
        def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
            seen[self._name] = dict(ctx.data)
            yield from super().rollback(ctx)

    steps: list[Step] = [
        Remembering("a", rec),
        Remembering("b", rec),
        Remembering("c", rec, fail=StepFailed("verification failed", step="c")),
    ]
    _, events = run_all(make_plan(tmp_path, steps))
    assert events[-1].exit_code == 1
    # step a was done by the killed run: this run (its continuation) still rolls it back
    assert [c for c in rec.calls if c.startswith("rollback")] == [
        "rollback:c",
        "rollback:b",
        "rollback:a",
    ]
    assert seen["b"]["made"] == "container-1"
    assert seen["a"] == {"applied": True}


def test_the_runner_works_from_a_worker_thread_and_cancels_from_another(tmp_path: Path) -> None:
    rec = Recorder()
    cancel = CancelToken()
    started = threading.Event()

    def wait_long(ctx: StepContext) -> Iterator[StepUpdate]:
        started.set()
        for _ in range(600):
            ctx.sleep(0.05)
            yield "still waiting"

    events: list[Event] = []
    plan = make_plan(tmp_path, [MemoryStep("a", rec, body=wait_long)])
    worker = threading.Thread(target=lambda: events.extend(Runner(plan, cancel=cancel).run()))
    worker.start()
    assert started.wait(5)
    cancel.cancel()
    worker.join(5)
    assert not worker.is_alive()
    assert events[-1].exit_code == 130


def test_the_run_record_of_result_json(tmp_path: Path) -> None:
    summary = RunSummary("r1", True, ["database"], "t0", "t1", tmp_path / "apply.log")
    assert summary.to_dict() == {
        "id": "r1",
        "resumed": True,
        "changed_steps": ["database"],
        "started_at": "t0",
        "finished_at": "t1",
        "log_file": str(tmp_path / "apply.log"),
    }


# A journal as the untyped runner (a dict per step) wrote it: killed in step b, which had
# remembered a backup; step a done and changed; c never reached.
_UNTYPED_JOURNAL = {
    "format": 1,
    "run_id": "20260101T000000Z-abc123",
    "identity": "plan-1",
    "status": "running",
    "pid": 999999,
    "started_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:05Z",
    "steps": {
        "a": {
            "status": "done",
            "data": {"applied": True},
            "started_at": "2026-01-01T00:00:01Z",
            "attempts": 1,
            "changed": True,
            "finished_at": "2026-01-01T00:00:02Z",
        },
        "b": {
            "status": "running",
            "data": {"backup": "state/backups/pre.sql"},
            "started_at": "2026-01-01T00:00:03Z",
            "attempts": 1,
            "changed": True,
        },
        "c": {"status": "pending", "data": {}},
    },
    "resumed_at": "2026-01-01T00:00:00Z",
}


def test_the_typed_journal_reads_and_writes_the_untyped_journals_json(tmp_path: Path) -> None:
    from installer.runner import Journal

    path = tmp_path / "journal.json"
    path.write_text(json.dumps(_UNTYPED_JOURNAL, indent=2) + "\n")
    loaded = Journal.load(path)
    assert loaded is not None and loaded.unfinished
    assert loaded.step("a").changed and loaded.step("b").data == {"backup": "state/backups/pre.sql"}
    assert loaded.step("c").status == "pending" and loaded.step("c").attempts == 0
    # Same keys in the same order: the file reads as it did.
    assert json.dumps(loaded.to_json()) == json.dumps(_UNTYPED_JOURNAL)
    loaded.save()
    again = json.loads(path.read_text())
    assert {k: v for k, v in again.items() if k != "updated_at"} == {
        k: v for k, v in _UNTYPED_JOURNAL.items() if k != "updated_at"
    }


def test_a_run_killed_under_the_untyped_journal_resumes_with_its_data(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.json").write_text(json.dumps(_UNTYPED_JOURNAL))
    seen: list[Any] = []

    def remembers(ctx: StepContext) -> Iterator[StepUpdate]:
        seen.append(dict(ctx.data))
        return iter(())

    rec = Recorder()
    steps: list[Step] = [
        MemoryStep("a", rec),
        MemoryStep("b", rec, body=remembers),
        MemoryStep("c", rec),
    ]
    runner, _ = run_all(make_plan(tmp_path, steps))
    assert runner.resumed and runner.run_id == "20260101T000000Z-abc123"
    assert rec.calls == ["check:b", "apply:b", "check:c", "apply:c"]
    assert seen == [{"backup": "state/backups/pre.sql"}]
    assert runner.outcome is not None and runner.outcome.changed_steps == ["a", "b", "c"]
    record = journal(tmp_path)
    assert record["status"] == "finished" and record["steps"]["b"]["attempts"] == 2
    assert record["steps"]["b"]["data"] == {"backup": "state/backups/pre.sql", "applied": True}
