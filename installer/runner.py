"""The runner: a plan's ordered steps, with a journal, a lock, rollback and typed events.

This is the install engine every front end and every adapter shares. The command line
(``apply``) and the wizard are front ends: they iterate over :meth:`Runner.run` and render
the :class:`~installer.events.Event` objects it yields. The Compose targets
(:mod:`installer.targets.compose`) and the Kubernetes targets are adapters: they build an
:class:`InstallPlan` whose steps do the work (:func:`installer.targets.target_for` picks one).

Using it (a front end)::

    plan = target_for(answers, loaded_secrets).plan()          # an adapter's plan
    runner = Runner(plan, cancel=CancelToken())                 # plan.redactor by default
    for event in runner.run():         # events are already redacted
        show(event)                    # or: print(event.to_json())
    sys.exit(runner.outcome.exit_code)

``run()`` never raises for anything that can go wrong in an install: failures become a
``run.failed`` event carrying the documented exit code (``outcome.exit_code`` holds it
too). A front end running it in a worker thread cancels it with ``cancel.cancel()``; the
runner stops at the next checkpoint (between steps, between two lines of a step's output,
inside a long command or wait), leaves the journal so a later run resumes, and ends with
exit code 130. Stopping the iteration early (``close()`` on the generator) counts as an
interruption too.

Writing a step (an adapter)::

    class DatabaseStep(Step):
        name = "database"                       # stable: the journal and events use it
        title = "Database initialization"

        def check(self, ctx: StepContext) -> str | None:
            return "schema already at version 3" if ... else None    # None: needs work

        def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
            yield "creating role codequal"                            # a line of output
            yield Progress(1, 3, "migrations", "applying 0002")      # progress
            ctx.remember("backup", "state/backups/pre-3.sql")        # kept for rollback

        def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
            backup = ctx.data.get("backup")                           # survives a SIGKILL
            ...

Rules for steps: ``apply`` is idempotent (a killed run re-runs the step it was in);
``check`` changes nothing; ``read_only`` steps (checks, verification) run every time and are
never rolled back; anything a rollback needs is stored with ``ctx.remember`` (the journal
is on disk, so a resumed run can still roll back what the killed one did). Raise
:class:`~installer.errors.StepFailed` (with the command, its exit code and the last log
lines) for a failure the operator can act on; any other exception is reported as an
unexpected error with its traceback in the run's log file only.

What the runner does around the steps:

* **Lock** (``state/apply.lock``): an ``flock`` held for the whole run. Another run gets
  :class:`~installer.errors.RunInProgress` (exit 2) naming the PID. A lock left by a dead
  process is released by the kernel; the runner notices the dead PID recorded in the file
  and says it broke a stale lock.
* **Journal** (``state/journal.json``, written atomically on every transition): each step's
  status (pending, running, done, skipped, failed, rolled_back) and data. When the previous
  run did not finish (killed, interrupted), the next run *resumes*: steps done by it are
  skipped when the plan is the same (its ``identity``), and their rollback data is kept
  either way.
* **Rollback**: when a step fails, every step this run changed (done, or the failing one)
  is rolled back in reverse order; ``rollback.started`` and ``step.rolled_back`` events show
  it. A failed rollback is reported, and the remaining rollbacks still run.
* **Log** (``state/logs/apply-<run>.log``, 0600): every event, redacted, plus tracebacks of
  unexpected errors; flushed per line, so a killed run's log is complete up to the kill.
* **Result** (``state/result.json``): on success, the plan's ``result`` callback's document
  (URLs, where credentials are, versions) plus the run's facts.

Exit codes (:class:`~installer.errors.ExitCode`): 0 done; 1 a step failed (rolled back);
2 usage (for instance another run holds the lock); 3 prerequisites not met; 4 bundle
integrity; 130 interrupted (resumable).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal, get_args

from installer.credentials import Redactor
from installer.errors import (
    EngineUnavailable,
    ExitCode,
    InstallerError,
    Interrupted,
    RunInProgress,
    StepFailed,
)
from installer.events import Event, EventType
from installer.statedir import StateDir, StateError, atomic_write_json, read_json

JOURNAL_FORMAT = 1
_DONE = ("done", "skipped")

# -- what steps yield -------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Progress of a step's long operation (an image pull, a migration, a wait).

    ``total`` is None when unknown; ``unit`` names what is counted (``bytes``, ``images``,
    ``services``); ``message`` says what is being done.
    """

    current: float
    total: float | None = None
    unit: str = ""
    message: str = ""


StepUpdate = str | Progress
"""What a step's ``apply``/``rollback`` yields: a line of output, or progress."""


# -- cancellation -----------------------------------------------------------------------


class CancelToken:
    """A flag a front end sets to stop a run; thread-safe.

    The command line sets it from its SIGINT/SIGTERM handler, the wizard from its Quit
    button. Code that waits uses :meth:`sleep`, which returns early when cancelled.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "interrupted"

    def cancel(self, reason: str = "interrupted") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Interrupted(self.reason)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when cancelled; then raise if cancelled."""
        self._event.wait(max(0.0, seconds))
        self.raise_if_cancelled()


# -- steps ------------------------------------------------------------------------------


class Step:
    """One step of a plan. Subclasses set ``name`` and ``title`` and override ``apply``.

    ``check`` returns a sentence saying why nothing needs doing (the step is then reported
    as skipped), or None when ``apply`` must run. ``description`` is what ``--dry-run``
    prints for the step.
    """

    name: str = "step"
    title: str = "Step"
    read_only: bool = False

    @property
    def description(self) -> str:
        return self.title

    def check(self, ctx: StepContext) -> str | None:
        return None

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        return iter(())

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        return iter(())


@dataclass
class InstallPlan:
    """What a runner runs: ordered steps and where the installation keeps its state.

    ``identity`` is a digest of everything the plan installs (answers, release, files):
    a resumed run skips the steps the interrupted run finished only when it is the same.
    ``result`` builds the document written to ``result.json`` after a successful run.
    ``files`` and ``summary`` are for front ends (``--dry-run``, the wizard's review).
    """

    steps: Sequence[Step]
    state: StateDir
    identity: str
    description: str = ""
    redactor: Redactor = field(default_factory=Redactor)
    result: Callable[[RunSummary], dict[str, Any]] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    command: str = "apply"  # what holds the installation's lock while this plan runs
    # Given the run's cancel token when a runner takes the plan: for waits inside the
    # plan's own connections (a Kubernetes API's retry back-off) that Ctrl-C must end.
    bind_cancel: Callable[[CancelToken], None] | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique: {names}")


@dataclass
class RunSummary:
    """Facts about a finished run, handed to the plan's ``result`` callback."""

    run_id: str
    resumed: bool
    changed_steps: list[str]
    started_at: str
    finished_at: str
    log_file: Path

    def to_dict(self) -> dict[str, Any]:
        """The run as ``result.json`` records it under ``run``."""
        return {
            "id": self.run_id,
            "resumed": self.resumed,
            "changed_steps": self.changed_steps,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "log_file": str(self.log_file),
        }


@dataclass
class RunOutcome:
    """How a run ended. ``error`` is the operator-facing error of a failed run."""

    exit_code: int
    status: str  # finished | failed | interrupted | rollback_failed | refused
    run_id: str | None = None
    error: InstallerError | None = None
    changed_steps: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    log_file: Path | None = None
    result_file: Path | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


# -- the journal ------------------------------------------------------------------------


StepStatus = Literal[
    "pending", "running", "done", "skipped", "failed", "rolled_back", "rollback_failed"
]
RunStatus = Literal[
    "running", "interrupted", "rolling_back", "finished", "failed", "rollback_failed"
]
_STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
_RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class StepRecord:
    """One step in the journal: its status, the data it remembered, and when it ran.

    ``changed`` is set once the step starts changing something (so a failure rolls it
    back); ``data`` is what the step stored with :meth:`StepContext.remember`.
    """

    name: str
    status: StepStatus = "pending"
    data: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    attempts: int = 0
    changed: bool = False
    finished_at: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this installer does not know (a newer one wrote them): kept as they are."""

    _KNOWN = ("status", "data", "started_at", "attempts", "changed", "finished_at", "error")

    @classmethod
    def from_json(cls, name: str, raw: Any) -> StepRecord:
        if not isinstance(raw, dict):
            return cls(name)
        status = raw.get("status")
        data = raw.get("data")
        attempts = raw.get("attempts")
        return cls(
            name=name,
            status=status if status in _STEP_STATUSES else "pending",
            data=data if isinstance(data, dict) else {},
            started_at=_text(raw.get("started_at")),
            attempts=attempts if isinstance(attempts, int) else 0,
            changed=raw.get("changed") is True,
            finished_at=_text(raw.get("finished_at")),
            error=_text(raw.get("error")),
            extra={k: v for k, v in raw.items() if k not in cls._KNOWN},
        )

    def to_json(self) -> dict[str, Any]:
        """The journal's JSON for this step (the keys the earlier, untyped journal wrote)."""
        out: dict[str, Any] = {"status": self.status, "data": self.data}
        if self.started_at is not None:
            out["started_at"] = self.started_at
        if self.attempts:
            out["attempts"] = self.attempts
        if self.changed:
            out["changed"] = True
        if self.finished_at is not None:
            out["finished_at"] = self.finished_at
        if self.error is not None:
            out["error"] = self.error
        out.update(self.extra)
        return out


@dataclass
class Journal:
    """``state/journal.json``: the run's status and each step's status and data.

    On disk (format 1)::

        {"format": 1, "run_id": "20260101T000000Z-ab12cd", "identity": "<plan digest>",
         "status": "running", "pid": 4242, "started_at": "...", "updated_at": "...",
         "steps": {"configuration": {"status": "done", "data": {...}, "changed": true, ...}},
         "resumed_at": "...", "finished_at": "..."}
    """

    path: Path
    run_id: str
    identity: str
    status: RunStatus = "running"
    pid: int | None = None
    started_at: str | None = None
    updated_at: str | None = None
    steps: dict[str, StepRecord] = field(default_factory=dict)
    resumed_at: str | None = None
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = (
        "format",
        "run_id",
        "identity",
        "status",
        "pid",
        "started_at",
        "updated_at",
        "steps",
        "resumed_at",
        "finished_at",
    )

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        """The journal at ``path`` (as written by this or an earlier installer), or None."""
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
            return None
        steps = data.get("steps")
        if not isinstance(steps, dict):
            return None
        pid = data.get("pid")
        status = data.get("status")
        return cls(
            path=path,
            run_id=_text(data.get("run_id")) or "",
            identity=_text(data.get("identity")) or "",
            # A status this installer does not know is a run it cannot resume.
            status=status if status in _RUN_STATUSES else "failed",
            pid=pid if isinstance(pid, int) else None,
            started_at=_text(data.get("started_at")),
            updated_at=_text(data.get("updated_at")),
            steps={str(n): StepRecord.from_json(str(n), raw) for n, raw in steps.items()},
            resumed_at=_text(data.get("resumed_at")),
            finished_at=_text(data.get("finished_at")),
            extra={k: v for k, v in data.items() if k not in cls._KNOWN},
        )

    @classmethod
    def new(cls, path: Path, run_id: str, identity: str, steps: Sequence[str]) -> Journal:
        return cls(
            path=path,
            run_id=run_id,
            identity=identity,
            status="running",
            pid=os.getpid(),
            started_at=_now(),
            updated_at=_now(),
            steps={name: StepRecord(name) for name in steps},
        )

    @property
    def unfinished(self) -> bool:
        """The run it records was killed or interrupted (or died rolling back)."""
        return self.status in ("running", "interrupted", "rolling_back")

    def step(self, name: str) -> StepRecord:
        """The record of step ``name`` (a pending one is added when the journal has none)."""
        return self.steps.setdefault(name, StepRecord(name))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": JOURNAL_FORMAT,
            "run_id": self.run_id,
            "identity": self.identity,
            "status": self.status,
            "pid": self.pid,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "steps": {name: record.to_json() for name, record in self.steps.items()},
        }
        if self.resumed_at is not None:
            out["resumed_at"] = self.resumed_at
        if self.finished_at is not None:
            out["finished_at"] = self.finished_at
        out.update(self.extra)
        return out

    def save(self) -> None:
        self.updated_at = _now()
        atomic_write_json(self.path, self.to_json(), 0o600)


# -- the lock ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StaleLock:
    """What a dead run left in the lock file."""

    pid: int | None
    started_at: str | None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive ``flock`` on ``state/apply.lock`` for the length of a run.

    The kernel releases an ``flock`` when its holder dies, however it dies, so a lock is
    never stale as far as exclusion goes; the file's content (PID, host, start time) only
    serves to name the holder and to notice that a previous holder died without
    cleaning up. The file is unlinked on release; an acquirer checks that the file it
    locked is still the one at the path, so an unlink racing with it cannot split the lock.
    """

    def __init__(self, path: Path, command: str = "apply") -> None:
        self.path = path
        self.command = command  # recorded in the file, so that a refused run names it
        self._fd: int | None = None

    def acquire(self) -> StaleLock | None:
        """Take the lock; the stale holder's facts when a dead run left the file behind."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as e:
                raise StateError(self.path, e) from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_fd(fd)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise StateError(self.path, e) from e
                pid = holder.get("pid")
                since = holder.get("started_at")
                who = f"PID {pid}" if pid else "another process"
                command = holder.get("command") or "run"
                raise RunInProgress(
                    f"another {command} is running on this installation ({who}"
                    + (f", started {since})" if since else ")"),
                    hint="wait for it to finish (or stop it), then try again",
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released and unlinked between our open and our flock
                os.close(fd)
                continue
            break
        previous = _read_fd(fd)
        stale = None
        if previous:
            pid = previous.get("pid")
            if not isinstance(pid, int) or pid == os.getpid() or not _pid_alive(pid):
                stale = StaleLock(pid if isinstance(pid, int) else None, previous.get("started_at"))
            else:
                # A live PID that does not hold the lock: reused by an unrelated process.
                stale = StaleLock(pid, previous.get("started_at"))
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": _now(),
            "command": self.command,
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me, separators=(",", ":")) + "\n").encode(), 0)
            os.fsync(fd)
        except OSError as e:
            os.close(fd)
            raise StateError(self.path, e) from e
        self._fd = fd
        return stale

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_fd(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode("utf-8", "replace") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- the run log ------------------------------------------------------------------------


class RunLog:
    """One run's log file (0600): every line redacted, flushed as written.

    A log that cannot be written (a full disk) does not stop the run; the first failure
    is remembered in ``error`` and later lines are dropped.
    """

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor
        self.error: OSError | None = None
        self._handle: IO[str] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            self._handle = os.fdopen(fd, "a", encoding="utf-8")
        except OSError as e:
            self.error = e

    def write(self, text: str) -> None:
        if self._handle is None:
            return
        try:
            for line in self.redactor(text).splitlines() or [""]:
                self._handle.write(f"{_now()} {line}\n")
            self._handle.flush()
        except OSError as e:
            self.error = e
            self.close()

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None


# -- the step context -------------------------------------------------------------------


class StepContext:
    """What a step sees of the run: its persisted data, cancellation, the log, redaction."""

    def __init__(self, runner: Runner, step: Step, record: StepRecord) -> None:
        self._runner = runner
        self.step = step
        self._record = record

    @property
    def data(self) -> dict[str, Any]:
        """This step's data in the journal (JSON values); it survives a killed run."""
        return self._record.data

    def remember(self, key: str, value: Any) -> None:
        """Store ``key`` in this step's journal data and write the journal now."""
        self.data[key] = value
        self._runner._save_journal()

    @property
    def state(self) -> StateDir:
        return self._runner.plan.state

    @property
    def run_id(self) -> str:
        return self._runner.run_id

    @property
    def resumed(self) -> bool:
        """This run continues one that was killed or interrupted."""
        return self._runner.resumed

    @property
    def cancel(self) -> CancelToken:
        return self._runner.cancel

    def raise_if_cancelled(self) -> None:
        self._runner.cancel.raise_if_cancelled()

    def sleep(self, seconds: float) -> None:
        """Cancellable sleep (raises :class:`Interrupted` when the run is cancelled)."""
        self._runner.cancel.sleep(seconds)

    def redact(self, text: str) -> str:
        return self._runner.redactor(text)

    def log(self, text: str) -> None:
        """A line for the log file only (command lines, raw details), redacted."""
        if self._runner._log is not None:
            self._runner._log.write(f"[{self.step.name}] {text}")


# -- the runner -------------------------------------------------------------------------


class Runner:
    """Runs an :class:`InstallPlan`; see the module documentation."""

    def __init__(
        self,
        plan: InstallPlan,
        *,
        redactor: Redactor | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.plan = plan
        self.redactor = redactor if redactor is not None else plan.redactor
        self.cancel = cancel if cancel is not None else CancelToken()
        if plan.bind_cancel is not None:
            plan.bind_cancel(self.cancel)
        self.run_id = new_run_id()
        self.resumed = False
        self.outcome: RunOutcome | None = None
        self._journal: Journal | None = None
        self._log: RunLog | None = None
        self._lock = RunLock(plan.state.lock, plan.command)
        self._changed: list[str] = []
        self._started_at = _now()

    # The generator is the public face: everything else is bookkeeping.
    def run(self) -> Iterator[Event]:
        """Run the plan, yielding redacted events; the last is ``run.finished``/``run.failed``."""
        finished = False
        try:
            yield from self._run()
            finished = True
        finally:
            if not finished and self.outcome is None:
                # The consumer stopped iterating (GeneratorExit): an interruption.
                self._mark_interrupted()
                self.outcome = RunOutcome(
                    int(ExitCode.INTERRUPTED), "interrupted", self.run_id, Interrupted("stopped")
                )
            self._close()

    # -- events ---------------------------------------------------------------------------

    def _event(
        self,
        type_: EventType,
        message: str = "",
        *,
        step: str | None = None,
        data: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Event:
        clean = _redact_data(data or {}, self.redactor)
        event = Event(type=type_, message=self.redactor(message), step=step, data=clean, **extra)
        if self._log is not None:
            where = f"[{step}] " if step else ""
            line = f"{where}{type_}: {event.message}"
            if type_ == "step.progress":
                total = "?" if event.total is None else f"{event.total:g}"
                line += f" ({event.current:g}/{total} {event.unit or ''})"
            self._log.write(line)
            for key in ("log_tail",):
                for tail_line in clean.get(key, []) or []:
                    self._log.write(f"{where}  | {tail_line}")
        return event

    def _save_journal(self) -> None:
        if self._journal is not None:
            self._journal.save()

    # -- the run --------------------------------------------------------------------------

    def _run(self) -> Iterator[Event]:
        state = self.plan.state
        try:
            state.ensure()
            stale = self._lock.acquire()
        except InstallerError as e:
            self.outcome = RunOutcome(int(e.exit_code), "refused", None, e)
            yield self._event(
                "run.failed",
                e.message,
                exit_code=int(e.exit_code),
                data={"hint": e.hint} if e.hint else None,
            )
            return

        previous = Journal.load(state.journal)
        if previous is not None and previous.unfinished:
            self.resumed = True
            self.run_id = previous.run_id or self.run_id
        self._log = RunLog(state.run_log(self.run_id), self.redactor)
        self._log.write(
            f"codequal-installer run {self.run_id} (pid {os.getpid()})"
            + (" resuming an interrupted run" if self.resumed else "")
        )
        if stale is not None:
            self._log.write(
                f"broke a stale lock left by PID {stale.pid} (no longer running)"
                if stale.pid
                else "broke a stale lock left by a run that died"
            )

        steps = list(self.plan.steps)
        same_plan = False
        if self.resumed and previous is not None:
            journal = previous
            same_plan = journal.identity == self.plan.identity
            journal.status = "running"
            journal.pid = os.getpid()
            journal.identity = self.plan.identity
            journal.resumed_at = _now()
            for step in steps:
                journal.step(step.name)
        else:
            journal = Journal.new(
                state.journal, self.run_id, self.plan.identity, [s.name for s in steps]
            )
        self._journal = journal

        data: dict[str, Any] = {
            "run_id": self.run_id,
            "resumed": self.resumed,
            "steps": [{"name": s.name, "title": s.title} for s in steps],
            "log_file": str(self._log.path),
            "state_dir": str(state.path),
        }
        if stale is not None:
            data["stale_lock_pid"] = stale.pid
        message = self.plan.description or "install"
        if self.resumed:
            resume_at = next(
                (s.name for s in steps if journal.step(s.name).status not in _DONE),
                None,
            )
            message += f" (resuming the interrupted run at {resume_at or 'the end'})"
            data["resume_at"] = resume_at
        if stale is not None:
            message += f"; broke a stale lock of PID {stale.pid}" if stale.pid else ""
        try:
            journal.save()
        except InstallerError as e:
            yield from self._finish_failed(e, None, rollback=False)
            return
        yield self._event("run.started", message, data=data)

        current: Step | None = None
        try:
            for index, step in enumerate(steps):
                current = step
                self.cancel.raise_if_cancelled()
                record = journal.step(step.name)
                if self.resumed and same_plan and record.status in _DONE:
                    if record.changed:
                        self._changed.append(step.name)
                    yield self._event(
                        "step.skipped",
                        "done by the interrupted run",
                        step=step.name,
                        data={"index": index, "title": step.title, "resumed": True},
                    )
                    continue
                yield from self._run_step(index, step, record)
            current = None
        except Interrupted as e:
            yield from self._finish_interrupted(e, current)
            return
        except InstallerError as e:
            yield from self._finish_failed(e, current, rollback=True)
            return
        except Exception as e:  # noqa: BLE001 - a bug or an untranslated SDK error: no traceback
            if self._log is not None:
                self._log.write(traceback.format_exc())
            error = StepFailed(
                f"unexpected error in step {current.name if current else '?'}: "
                f"{type(e).__name__}: {e}",
                step=current.name if current else "?",
                hint=f"the traceback is in the log file {self._log.path if self._log else ''}",
            )
            yield from self._finish_failed(error, current, rollback=True)
            return
        yield from self._finish_ok()

    def _run_step(self, index: int, step: Step, record: StepRecord) -> Iterator[Event]:
        base = {"index": index, "title": step.title}
        started = time.monotonic()
        yield self._event("step.started", step.title, step=step.name, data=base)
        record.status = "running"
        record.started_at = _now()
        record.attempts += 1
        record.error = None
        self._save_journal()
        ctx = StepContext(self, step, record)
        reason = None if step.read_only else step.check(ctx)
        if reason is not None:
            record.status = "skipped"
            record.finished_at = _now()
            self._save_journal()
            yield self._event("step.skipped", reason, step=step.name, data=base)
            return
        if not step.read_only:
            record.changed = True  # from here on a failure must roll this step back
            self._save_journal()
        for update in step.apply(ctx):
            yield self._update_event(step, update)
            self.cancel.raise_if_cancelled()
        record.status = "done"
        record.finished_at = _now()
        self._save_journal()
        if not step.read_only:
            self._changed.append(step.name)
        elapsed = round(time.monotonic() - started, 3)
        yield self._event(
            "step.finished",
            f"{step.title}: done in {elapsed:.1f}s",
            step=step.name,
            data={**base, "elapsed_seconds": elapsed, "changed": not step.read_only},
        )

    def _update_event(self, step: Step, update: StepUpdate, phase: str | None = None) -> Event:
        data = {"phase": phase} if phase else None
        if isinstance(update, Progress):
            return self._event(
                "step.progress",
                update.message,
                step=step.name,
                current=update.current,
                total=update.total,
                unit=update.unit or None,
                data=data,
            )
        return self._event("step.output", str(update).rstrip("\n"), step=step.name, data=data)

    # -- endings --------------------------------------------------------------------------

    def _finish_ok(self) -> Iterator[Event]:
        assert self._journal is not None and self._log is not None  # noqa: S101
        self._journal.status = "finished"
        self._journal.finished_at = _now()
        result_file: Path | None = None
        try:
            self._journal.save()
            if self.plan.result is not None:
                summary = RunSummary(
                    self.run_id,
                    self.resumed,
                    list(self._changed),
                    self._started_at,
                    _now(),
                    self._log.path,
                )
                document = self.plan.result(summary)
                document = _redact_data(document, self.redactor)
                atomic_write_json(self.plan.state.result, document, 0o644)
                result_file = self.plan.state.result
        except InstallerError as e:
            # Everything is installed; only the bookkeeping failed. Say so, plainly.
            self.outcome = RunOutcome(
                int(ExitCode.INSTALL_FAILED), "failed", self.run_id, e, list(self._changed)
            )
            yield self._event(
                "run.failed",
                f"installed, but {e.message}",
                exit_code=int(ExitCode.INSTALL_FAILED),
                data={"hint": e.hint, "log_file": str(self._log.path)},
            )
            return
        if self._changed:
            message = "installed: changed " + ", ".join(self._changed)
        else:
            message = "nothing changed: the installation already matches the answers"
        self.outcome = RunOutcome(
            int(ExitCode.OK),
            "finished",
            self.run_id,
            None,
            list(self._changed),
            log_file=self._log.path,
            result_file=result_file,
        )
        yield self._event(
            "run.finished",
            message,
            exit_code=0,
            data={
                "changed_steps": list(self._changed),
                "log_file": str(self._log.path),
                "result_file": str(result_file) if result_file else None,
            },
        )

    def _finish_interrupted(self, error: InstallerError, step: Step | None) -> Iterator[Event]:
        self._mark_interrupted()
        where = f" during {step.title.lower()}" if step is not None else ""
        message = (
            f"interrupted{where}; nothing half written. Run the same apply again to resume"
            + (f" at step {step.name}" if step is not None else "")
        )
        self.outcome = RunOutcome(
            int(ExitCode.INTERRUPTED),
            "interrupted",
            self.run_id,
            error,
            list(self._changed),
            log_file=self._log.path if self._log else None,
        )
        if step is not None:
            yield self._event("step.failed", "interrupted", step=step.name)
        yield self._event(
            "run.failed",
            message,
            exit_code=int(ExitCode.INTERRUPTED),
            data={"log_file": str(self._log.path) if self._log else None, "resumable": True},
        )

    def _mark_interrupted(self) -> None:
        if self._journal is not None and self._journal.status == "running":
            self._journal.status = "interrupted"
            with contextlib.suppress(InstallerError):
                self._journal.save()

    def _finish_failed(
        self, error: InstallerError, step: Step | None, *, rollback: bool
    ) -> Iterator[Event]:
        journal = self._journal
        exit_code = int(error.exit_code)
        details: dict[str, Any] = {}
        if error.hint:
            details["hint"] = error.hint
        if isinstance(error, StepFailed):
            if error.log_tail:
                details["log_tail"] = error.log_tail
            if error.command:
                details["command"] = error.command
            if error.returncode is not None:
                details["returncode"] = error.returncode
        problems = getattr(error, "problems", None)
        if problems:
            details["problems"] = list(problems)
        if step is not None and journal is not None:
            record = journal.step(step.name)
            record.status = "failed"
            record.error = self.redactor(error.message)
            record.finished_at = _now()
            with contextlib.suppress(InstallerError):
                journal.save()
            yield self._event("step.failed", error.message, step=step.name, data=details)

        rolled_back: list[str] = []
        rollback_failed: list[str] = []
        left_for_rerun: list[str] = []  # needs the engine that is gone: the rerun resumes
        if rollback and journal is not None:
            to_undo = [
                s
                for s in reversed(list(self.plan.steps))
                if not s.read_only
                and journal.step(s.name).changed
                and journal.step(s.name).status in ("done", "failed", "running")
            ]
            if to_undo:
                journal.status = "rolling_back"
                with contextlib.suppress(InstallerError):
                    journal.save()
                yield self._event(
                    "rollback.started",
                    "rolling back what this run changed: " + ", ".join(s.name for s in to_undo),
                    data={"steps": [s.name for s in to_undo]},
                )
            for undo in to_undo:
                record = journal.step(undo.name)
                ctx = StepContext(self, undo, record)
                try:
                    for update in undo.rollback(ctx):
                        yield self._update_event(undo, update, phase="rollback")
                except Exception as e:  # noqa: BLE001 - roll back the rest whatever happened
                    if self._log is not None:
                        self._log.write(traceback.format_exc())
                    if isinstance(e, EngineUnavailable) and isinstance(error, EngineUnavailable):
                        left_for_rerun.append(undo.name)  # not a second failure: one cause
                        record.status = "pending"  # to be done again by the next run
                        yield self._event(
                            "step.output",
                            f"not rolled back: {undo.name} needs the engine that stopped "
                            "answering; the next run resumes from here",
                            step=undo.name,
                            data={"phase": "rollback", "left_for_rerun": True},
                        )
                        continue
                    reason = (
                        e.message if isinstance(e, InstallerError) else f"{type(e).__name__}: {e}"
                    )
                    rollback_failed.append(undo.name)
                    record.status = "rollback_failed"
                    yield self._event(
                        "step.output",
                        f"rollback of {undo.name} failed: {reason}",
                        step=undo.name,
                        data={"phase": "rollback"},
                    )
                    continue
                record.status = "rolled_back"
                rolled_back.append(undo.name)
                with contextlib.suppress(InstallerError):
                    journal.save()
                yield self._event("step.rolled_back", f"{undo.title}: rolled back", step=undo.name)
        if journal is not None:
            journal.status = (
                "rollback_failed"
                if rollback_failed
                else "interrupted"  # resumable: the engine's steps wait for the next run
                if left_for_rerun
                else "failed"
            )
            journal.finished_at = _now()
            with contextlib.suppress(InstallerError):
                journal.save()
        message = error.message
        if isinstance(error, EngineUnavailable) and step is not None:
            message = f"step {step.name}: {message}"
        if rollback_failed:
            message += (
                f"; the rollback of {', '.join(rollback_failed)} failed too: see the log file"
            )
            details["rollback_failed"] = rollback_failed
        elif rolled_back:
            message += "; rolled back: " + ", ".join(rolled_back)
        if left_for_rerun:
            message += "; the same command, run again, resumes the install"
            details["left_for_rerun"] = left_for_rerun
            details["resumable"] = True
        details["rolled_back"] = rolled_back
        if step is not None:
            details["step"] = step.name
        if self._log is not None:
            details["log_file"] = str(self._log.path)
        self.outcome = RunOutcome(
            exit_code,
            "rollback_failed" if rollback_failed else "failed",
            self.run_id,
            error,
            list(self._changed),
            rolled_back,
            log_file=self._log.path if self._log else None,
        )
        yield self._event("run.failed", message, exit_code=exit_code, data=details)

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
        self._lock.release()


def _redact_data(value: Any, redactor: Redactor) -> Any:
    """``value`` (JSON-like) with every string passed through ``redactor``."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {k: _redact_data(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_data(v, redactor) for v in value]
    if isinstance(value, Path):
        return redactor(str(value))
    return value
