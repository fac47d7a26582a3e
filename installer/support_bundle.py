"""``codequal-installer support-bundle``: one archive an operator can send to the vendor.

What goes in (``<name>/`` inside a ``.tar.gz``): ``status.json``, ``history.jsonl``,
``result.json`` and ``journal.json``, the newest run logs (``logs/``), a fresh prerequisite
report (``checks.json``), each container's state and the tail of its log
(``containers/``), the answers (they hold no secrets) and the rendered configuration
(``config/``) without the files that hold secrets (``.env``, private keys, the generated
secrets, the state directory itself). ``CONTENTS.json`` lists what is in it and what was
left out.

Redaction is by known values, not by patterns (patterns miss secrets: troubleshoot#793):
every secret supplied (secrets file, environment) or generated (``generated-secrets.json``,
the private keys' lines) is looked for raw, URL-encoded, and base64-encoded in both
alphabets, padded or not, and also as the part of a longer base64 text that encodes it at
each of the three byte alignments. Every occurrence is replaced by ``[REDACTED]``.

The archive is then opened again, every member decompressed and searched for every one of
those forms. If any is left, the archive is deleted before it ever had its final name and
the command exits 5 (:attr:`ExitCode.REDACTION_FAILED`) naming the kind of value (say,
``database_password, base64``) and the member, never the value. It fails closed.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from installer.answers import AnswerFile
from installer.credentials import LoadedSecrets
from installer.errors import ExitCode, InstallerError
from installer.statedir import StateDir, read_json

MASK = b"[REDACTED]"
LOGS_KEPT = 5
LOG_TAIL_LINES = 200
MAX_CONFIG_FILE = 1024 * 1024
# The shortest text searched for: shorter fragments would match ordinary text by chance.
MIN_FORM_LENGTH = 8
# Files of the install directory that hold secrets: never copied, whatever they contain.
SECRET_FILE_NAMES = frozenset(
    # alertmanager.yml holds the alert receivers' passwords, webhook URL and routing key.
    {".env", "generated-secrets.json", "secrets.yaml", "secrets.yml", "alertmanager.yml"}
)
SECRET_SUFFIXES = (".key", ".p12", ".pfx", ".keystore")
SKIPPED_DIRECTORIES = frozenset({"state", "backups"})


class RedactionFailed(InstallerError):
    """A known secret was still in the finished archive: nothing was written (exit 5)."""

    exit_code = ExitCode.REDACTION_FAILED

    def __init__(self, found: list[tuple[str, str]]) -> None:
        kinds = sorted({kind for kind, _ in found})
        where = sorted({member for _, member in found})
        super().__init__(
            "the support bundle was not written: after redaction it still held "
            + "; ".join(kinds)
            + " (in "
            + ", ".join(where[:5])
            + (f" and {len(where) - 5} more" if len(where) > 5 else "")
            + ")",
            hint="this is a bug in the redaction; send the state/logs by hand after checking "
            "them, and report the kind of value named here",
        )
        self.found = found


@dataclass(frozen=True)
class Form:
    """One way a secret can appear in text: the bytes to look for and what they are."""

    kind: str  # "database_password (base64)": names the value's key, never the value
    text: bytes


def _b64_forms(raw: bytes) -> Iterator[tuple[str, bytes]]:
    for alphabet, encode in (
        ("base64", base64.b64encode),
        ("base64url", base64.urlsafe_b64encode),
    ):
        full = encode(raw)
        yield alphabet, full
        yield f"{alphabet}, unpadded", full.rstrip(b"=")
        # Inside a longer base64 text the value starts at byte offset 0, 1 or 2 of a
        # 3-byte group: the characters that encode only the value's own bytes are fixed.
        for offset in range(3):
            encoded = encode(b"\0" * offset + raw)
            first = 1 if offset else 0
            last = (offset + len(raw)) // 3
            fragment = encoded[4 * first : 4 * last]
            yield f"{alphabet}, inside a longer text at alignment {offset}", fragment


def forms_of(kind: str, value: str) -> list[Form]:
    """Every form of ``value`` this module looks for (see the module documentation)."""
    raw = value.encode("utf-8")
    found: dict[bytes, str] = {raw: f"{kind} (raw)"}
    for encoded, name in (
        (quote(value, safe=""), "URL-encoded"),
        (quote(value), "URL-encoded"),
        (quote_plus(value), "URL-encoded"),
    ):
        found.setdefault(encoded.encode("ascii"), f"{kind} ({name})")
    for name, text in _b64_forms(raw):
        found.setdefault(text, f"{kind} ({name})")
    return [Form(k, t) for t, k in found.items() if len(t) >= MIN_FORM_LENGTH or t == raw]


def known_forms(values: dict[str, str]) -> list[Form]:
    """The forms of every known value, longest first (a longer form hides a shorter one)."""
    forms: dict[bytes, Form] = {}
    for kind, value in values.items():
        for form in forms_of(kind, value):
            forms.setdefault(form.text, form)
    return sorted(forms.values(), key=lambda f: len(f.text), reverse=True)


def redaction_forms(values: dict[str, str]) -> list[Form]:
    """What the redactor replaces. The same list the final scan looks for; a test replaces
    this function with one that misses a value, to prove the scan stops the archive."""
    return known_forms(values)


def redact(data: bytes, forms: Iterable[Form]) -> tuple[bytes, int]:
    """``data`` with every form replaced by ``[REDACTED]``, and how many were replaced."""
    count = 0
    for form in forms:
        if form.text in data:
            count += data.count(form.text)
            data = data.replace(form.text, MASK)
    return data, count


def _pem_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    body = [line.strip() for line in text.splitlines() if line and not line.startswith("-----")]
    lines = [line for line in body if len(line) >= 16]
    if body:
        lines.append("".join(body))
    return lines


def secret_values(answers: AnswerFile, loaded: LoadedSecrets, state: StateDir) -> dict[str, str]:
    """Every secret value known for this installation, by a name that says what it is."""
    values: dict[str, str] = {}
    for key, value in loaded.secrets.supplied().items():
        values[key] = value
    generated = read_json(state.path / "generated-secrets.json")
    if isinstance(generated, dict):
        for key, value in generated.items():
            if isinstance(value, str) and value:
                values.setdefault(key, value)
                if values[key] != value:
                    values[f"{key} (generated)"] = value
    keys = [state.path / "tls" / "self-signed.key"]
    if answers.is_compose:
        keys += sorted((Path(answers.install_dir) / "nginx" / "ssl").glob("*.key"))
    if answers.tls.key_file:
        keys.append(Path(answers.tls.key_file))
    for path in keys:
        for index, line in enumerate(_pem_lines(path)):
            values[f"TLS private key {path.name} #{index}"] = line
    with contextlib.suppress(OSError):  # upgrade's own age identity (installer.upgrade)
        for line in (state.path / "rollback-identity.key").read_text().splitlines():
            if line.startswith("AGE-SECRET-KEY-"):
                values["rollback identity"] = line.strip()
    return {k: v for k, v in values.items() if v and len(v) >= 4}


def state_for(answers: AnswerFile) -> StateDir:
    """The installation's state directory (Compose: in install_dir; Kubernetes: local)."""
    if answers.is_compose:
        return StateDir.for_install_dir(answers.install_dir)
    from installer.targets.kubernetes.session import default_root

    return StateDir(default_root(answers) / "state")


@dataclass
class SupportBundle:
    """Collects, redacts, writes and re-checks one support archive."""

    answers: AnswerFile
    loaded: LoadedSecrets
    out: Path
    engine: Any = None
    members: dict[str, bytes] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    redactions: int = 0

    @property
    def state(self) -> StateDir:
        return state_for(self.answers)

    @property
    def prefix(self) -> str:
        return self.out.name.removesuffix(".tar.gz").removesuffix(".tgz") or "codequal-support"

    # -- collecting -------------------------------------------------------------------------

    def collect(self) -> None:
        self._add_json("answers.json", self.answers.model_dump(mode="json"))
        self._status()
        state = self.state
        for name in ("history.jsonl", "result.json", "journal.json"):
            self._add_file(name, state.path / name)
        logs = sorted(
            (p for p in state.logs.glob("*.log") if p.is_file()),
            key=lambda p: p.stat().st_mtime_ns,
            reverse=True,
        )
        for path in logs[:LOGS_KEPT]:
            self._add_file(f"logs/{path.name}", path)
        if len(logs) > LOGS_KEPT:
            self.left_out.append(f"{len(logs) - LOGS_KEPT} older run logs")
        self._checks()
        if self.answers.is_compose:
            self._containers()
            self._config(Path(self.answers.install_dir))

    def _add_json(self, name: str, data: Any) -> None:
        self.members[name] = (json.dumps(data, indent=2, default=str) + "\n").encode()

    def _add_file(self, name: str, path: Path) -> None:
        try:
            self.members[name] = path.read_bytes()
        except FileNotFoundError:
            pass
        except OSError as e:
            self.problems.append(f"{path}: {e.strerror or type(e).__name__}")

    def _status(self) -> None:
        try:
            if self.answers.is_compose:
                from installer.status import installation_status

                status = installation_status(Path(self.answers.install_dir), self.engine)
                self._add_json("status.json", status.to_dict())
            else:
                from installer.targets.kubernetes.plan import kubernetes_status

                self._add_json("status.json", kubernetes_status(self.answers))
        except InstallerError as e:
            self.problems.append(f"status: {e.message}")

    def _checks(self) -> None:
        from installer.checks.prerequisites import run_prerequisites

        try:
            report = run_prerequisites(self.answers)
        except InstallerError as e:
            self.problems.append(f"checks: {e.message}")
            return
        self.members["checks.json"] = (report.to_json() + "\n").encode()

    def _containers(self) -> None:
        from installer.engine.docker import DockerEngine

        engine = self.engine if self.engine is not None else DockerEngine(timeout=20)
        project = self.answers.compose_project
        record = read_json(self.state.result)
        if isinstance(record, dict) and record.get("compose_project"):
            project = str(record["compose_project"])
        try:
            containers = engine.project_containers(project)
        except InstallerError as e:
            self.problems.append(f"containers: {e.message}")
            return
        for info in containers:
            name = f"containers/{info.service}-{info.id[:12]}"
            self._add_json(
                f"{name}.json",
                {
                    "id": info.id,
                    "name": info.name,
                    "service": info.service,
                    "image": info.image,
                    "state": info.state,
                    "health": info.health,
                    "health_output": info.health_output,
                    "exit_code": info.exit_code,
                    "oneoff": info.oneoff,
                },
            )
            try:
                lines = engine.logs(info.id, tail=LOG_TAIL_LINES)
            except InstallerError as e:
                self.problems.append(f"{info.name} log: {e.message}")
                continue
            self.members[f"{name}.log"] = ("\n".join(lines) + "\n").encode(errors="replace")

    def _config(self, root: Path) -> None:
        if not root.is_dir():
            return
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if relative.parts[0] in SKIPPED_DIRECTORIES or not path.is_file() or path.is_symlink():
                continue
            if path.name in SECRET_FILE_NAMES or path.name.endswith(SECRET_SUFFIXES):
                self.left_out.append(f"{relative} (holds secrets)")
                continue
            if path.stat().st_size > MAX_CONFIG_FILE:
                self.left_out.append(f"{relative} (larger than 1 MiB)")
                continue
            self._add_file(f"config/{relative.as_posix()}", path)

    # -- writing ----------------------------------------------------------------------------

    def write(self) -> Path:
        """Redact, write to a temporary name, re-check every member, then rename."""
        values = secret_values(self.answers, self.loaded, self.state)
        forms = redaction_forms(values)
        clean: dict[str, bytes] = {}
        for name, data in self.members.items():
            clean[name], count = redact(data, forms)
            self.redactions += count
        clean["CONTENTS.json"] = (
            json.dumps(
                {
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "install": self.answers.compose_project
                    if self.answers.is_compose
                    else self.answers.kubernetes.namespace,
                    "target": self.answers.target,
                    "members": sorted(clean),
                    "left_out": self.left_out,
                    "problems": self.problems,
                    "redacted": {"values_known": len(values), "replacements": self.redactions},
                },
                indent=2,
            )
            + "\n"
        ).encode()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        partial = self.out.with_name(f".{self.out.name}.partial")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                with tarfile.open(fileobj=handle, mode="w:gz") as archive:
                    now = time.time()
                    for name, data in sorted(clean.items()):
                        info = tarfile.TarInfo(f"{self.prefix}/{name}")
                        info.size, info.mode, info.mtime = len(data), 0o600, int(now)
                        archive.addfile(info, io.BytesIO(data))
                handle.flush()
                os.fsync(handle.fileno())
            found = scan_archive(partial, known_forms(values))
            if found:
                raise RedactionFailed(found)
            os.replace(partial, self.out)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        return self.out


def scan_archive(path: Path, forms: list[Form]) -> list[tuple[str, str]]:
    """(kind, member) for every known form found in any member (or member name) of ``path``."""
    found: list[tuple[str, str]] = []
    with tarfile.open(path, mode="r:gz") as archive:
        for member in archive:
            data = member.name.encode()
            if member.isfile():
                stream = archive.extractfile(member)
                data += b"\n" + (stream.read() if stream is not None else b"")
            for form in forms:
                if form.text in data:
                    found.append((form.kind, member.name))
    return found


def default_out() -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"codequal-support-{stamp}.tar.gz")


def create_support_bundle(
    answers: AnswerFile, loaded: LoadedSecrets, out: Path | None = None, *, engine: Any = None
) -> SupportBundle:
    """Collect and write a support archive (raises :class:`RedactionFailed`, exit 5)."""
    bundle = SupportBundle(answers, loaded, Path(out or default_out()).resolve(), engine=engine)
    bundle.collect()
    bundle.write()
    return bundle


def run_support_bundle(answers_path: str, secrets_path: str | None, out: str | None) -> int:
    """``codequal-installer support-bundle``: the exit code."""
    import click

    from installer.validation import load_answers, load_secrets

    answers = load_answers(answers_path)
    loaded = load_secrets(secrets_path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    bundle = create_support_bundle(answers, loaded, Path(out) if out else None)
    click.echo(
        f"{bundle.out}: {len(bundle.members) + 1} files, {bundle.redactions} secret "
        f"occurrences redacted, checked again after writing (mode 0600)"
    )
    for problem in bundle.problems:
        click.echo(f"note: not collected: {problem}", err=True)
    return int(ExitCode.OK)
