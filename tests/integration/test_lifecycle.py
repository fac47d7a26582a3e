"""The installation's life after install, on the real Docker Engine with the test releases:
an enforced upgrade path (a required stop refused, then forced with a recorded reason), the
history and status, the support bundle of an install whose logs hold every secret, and
uninstall (data kept, then purged: nothing left by label or by name)."""

from __future__ import annotations

import base64
import json
import tarfile
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests.integration.apply_support import Install

SECRETS = {
    "openai_api_key": "sk-live-INTEGRATION/openai+key=1&x",
    "github_token": "ghp_IntegrationToken0123456789abcdefABCDEF",
}


def _history(install: Install) -> list[dict[str, Any]]:
    path = install.state / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plantings(value: str) -> list[str]:
    raw = value.encode()
    out = [value, quote(value, safe=""), quote_plus(value)]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for prefix in (b"", b"a", b"ab", b"user:"):
            out.append(encode(prefix + raw).decode())
            out.append(encode(prefix + raw + b"@rest").decode().rstrip("="))
    return out


def _items(method: str = "GET", body: str | None = None) -> Any:
    request = urllib.request.Request(
        "http://127.0.0.1:3000/items",
        data=body.encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http literal
        return json.loads(response.read())


@pytest.mark.parametrize("target", ["development", "production"])
def test_a_required_stop_is_enforced_then_forced_and_recorded(
    install: Install, tmp_path: Path, target: str
) -> None:
    secrets = install.secrets_file(**SECRETS)
    answers = install.answers(target)
    first = install.apply(answers, secrets=secrets)
    assert first.exit_code == 0, first.describe()
    assert [(e["kind"], e["release"]["to"], e["exit_code"]) for e in _history(install)] == [
        ("install", "1.0.0-test", 0)
    ]

    refused = install.run(
        "upgrade", "--answers", str(answers), "--secrets", str(secrets), "--to", "3.0.0-test",
        "--yes", "--json",
    )  # fmt: skip
    assert refused.exit_code == 2, refused.describe()
    failure = refused.last
    assert failure["type"] == "run.failed"
    assert "skips the required stop 1.5.0-test" in failure["message"]
    assert "1.0.0-test -> 1.5.0-test -> 3.0.0-test" in failure["data"]["hint"]
    assert install.result()["release"]["version"] == "1.0.0-test"
    assert len(_history(install)) == 1, "a refused upgrade changed nothing"

    forced = install.run(
        "upgrade", "--answers", str(answers), "--secrets", str(secrets), "--to", "3.0.0-test",
        "--force-path", "vendor ticket 4711: 1.5 migrations folded into 3.0", "--yes", "--json",
    )  # fmt: skip
    assert forced.exit_code == 0, forced.describe()
    assert any("going on (--force-path" in str(e.get("message")) for e in forced.events)
    result = install.result()
    assert (result["release"]["version"], result["schema_version"]) == ("3.0.0-test", "3")
    last = _history(install)[-1]
    assert last["kind"] == "upgrade"
    assert last["release"] == {"from": "1.0.0-test", "to": "3.0.0-test"}
    assert last["exit_code"] == 0 and last["outcome"] == "finished"
    assert last["forced_path"] == "vendor ticket 4711: 1.5 migrations folded into 3.0"
    # The verified pre-upgrade backup it relied on, encrypted also to the state's own key.
    archive = Path(last["backup"])
    assert archive.name.endswith(".cqbackup") and archive.is_file()
    verified = json.loads(archive.with_name(archive.name + ".verified.json").read_text())
    assert verified["purpose"] == "pre-upgrade" and verified["release"] == "1.0.0-test"
    identity = install.state / "rollback-identity.key"
    assert (identity.stat().st_mode & 0o777) == 0o600

    status = install.run("status", "--install-dir", str(install.install_dir), "--json")
    assert status.exit_code == 0, status.describe()
    shown = json.loads(status.stdout)
    assert shown["release"] == "3.0.0-test" and shown["schema_version"] == "3"
    assert [e["kind"] for e in shown["history"]] == ["install", "upgrade"]
    assert shown["last_backup"]["archive"] == str(archive) and shown["last_backup"]["verified"]
    text = install.run("status", "--install-dir", str(install.install_dir))
    printed = " ".join(text.stdout.split())  # rich wraps at the terminal's width
    assert "path forced: vendor ticket 4711" in printed
    squeezed = "".join(text.stdout.split())  # a long path may be wrapped anywhere
    assert f"lastbackup:{archive}(" in squeezed and ",verified)" in squeezed

    # The support bundle of this install, whose logs are made to hold every secret.
    generated_file = install.state / "generated-secrets.json"  # none for SQLite, no monitoring
    generated = json.loads(generated_file.read_text()) if generated_file.exists() else {}
    assert bool(generated) == (target == "production")  # the database password
    every = [*SECRETS.values(), *generated.values()]
    planted = [form for value in every for form in _plantings(value)]
    log = install.state / "logs" / "apply-planted.log"
    log.write_text("\n".join(f"debug: header={form}" for form in planted) + "\n")
    out = tmp_path / "support" / "bundle.tar.gz"
    made = install.run(
        "support-bundle", "--answers", str(answers), "--secrets", str(secrets), "--out", str(out)
    )
    assert made.exit_code == 0, made.describe()
    assert (out.stat().st_mode & 0o777) == 0o600
    with tarfile.open(out, "r:gz") as archive:
        members = {
            m.name.split("/", 1)[1]: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive
            if m.isfile()
        }
    assert {"status.json", "history.jsonl", "checks.json", "logs/apply-planted.log"} <= set(members)
    assert any(n.startswith("containers/codequal-") and n.endswith(".log") for n in members)
    assert "config/docker-compose.yml" in members and "config/.env" not in members
    everything = b"\n".join(members.values())
    leaks = [f for f in planted if f.encode() in everything]
    assert not leaks, f"{len(leaks)} planted forms survived"
    assert members["logs/apply-planted.log"].count(b"[REDACTED]") >= len(planted)
    log.unlink()  # the fixture's own scan looks at state/logs


def _write_row(install: Install, target: str, body: str) -> None:
    if target == "development":
        _items("POST", body)
    else:
        status, _ = install.https_post("/items", body)
        assert status in (200, 201)


def _rows(install: Install, target: str) -> list[str]:
    if target == "development":
        data = _items()
    else:
        status, data = install.https_get("/items")
        assert status == 200
    return [item["body"] for item in data["items"]]


@pytest.mark.parametrize("target", ["development", "production"])
def test_uninstall_keeps_the_data_and_purge_leaves_nothing(install: Install, target: str) -> None:
    answers = install.answers(target)
    first = install.apply(answers)
    assert first.exit_code == 0, first.describe()
    _write_row(install, target, "written before the uninstall")
    project = install.project

    kept = install.run("uninstall", "--answers", str(answers), "--yes", "--json")
    assert kept.exit_code == 0, kept.describe()
    report = json.loads(kept.stdout)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in report["items"]:
        by_kind.setdefault(item["kind"], []).append(item)
    assert {"container", "network", "volume", "image", "state"} <= set(by_kind)
    volumes = {v["name"]: v for v in by_kind["volume"]}
    assert f"{project}_codequal_data" in volumes
    if target == "production":
        assert f"{project}_postgres_data" in volumes
        assert {"certificate"} <= set(by_kind)
    assert all(v["action"] == "kept" and v["size"] is not None for v in volumes.values())
    assert all(c["action"] == "removed" for c in by_kind["container"])
    assert all(i["action"] == "kept" for i in by_kind["image"])
    assert install.containers() == []
    assert install.docker.containers.list(all=True, filters={"name": f"{project}-"}) == []
    label = {"label": [f"com.docker.compose.project={project}"]}
    assert {v.name for v in install.docker.volumes.list(filters=label)} == set(volumes)
    assert (install.state / "result.json").is_file() and (install.state / "logs").is_dir()
    assert _history(install)[-1]["kind"] == "uninstall"
    status = install.run("status", "--install-dir", str(install.install_dir), "--json")
    assert status.exit_code == 1 and json.loads(status.stdout)["installed"] is False

    again = install.apply(answers)
    assert again.exit_code == 0, again.describe()
    assert "written before the uninstall" in _rows(install, target)

    purged = install.run("uninstall", "--answers", str(answers), "--purge", "--yes", "--json")
    assert purged.exit_code == 0, purged.describe()
    assert install.containers() == []
    for collection in (install.docker.containers, install.docker.volumes, install.docker.networks):
        kwargs: dict[str, Any] = {"all": True} if collection is install.docker.containers else {}
        assert collection.list(filters=label, **kwargs) == []
        named = [
            o
            for o in collection.list(filters={"name": project}, **kwargs)
            if o.name.lstrip("/").startswith((f"{project}-", f"{project}_"))
        ]
        assert named == []
    assert not install.install_dir.exists()
