"""Live checks against real services on this machine (issue 16, acceptance 1-4 and 6).

- Debian's docker-registry with TLS (a test CA) and htpasswd: right credentials and CA
  pass; a wrong password names 401; no CA names the TLS error; a missing image names the
  reference and 404.
- The test PostgreSQL image as a managed database on a published port: the right password
  passes with the server version; a wrong password, a user without CREATE and
  ``sslmode=verify-full`` against a server without TLS fail, each in its own words.
- Debian's slapd, seeded here, over ldaps with the test CA: bind and search pass; a wrong
  bind password and an empty user base fail distinctly.
- No network at all (``unshare -n``): every check answers, within 10 s, in operator words;
  with the offline bundle given, the images check passes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.live.database import check_database
from installer.live.images import check_images
from installer.live.ldap import check_ldap
from installer.live.result import LiveInput
from installer.release import load_release
from tests.support.images import POSTGRES, BuildReport
from tests.support.ldap_server import EMPTY_DN, PEOPLE_DN, LdapServer, LdapStartError, ldap_server
from tests.support.registry import RegistryStartError
from tests.support.secure_registry import SecureRegistry, secure_registry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RELEASE = "1.0.0-test"


def _answers(tmp_path: Path, **sections: Any) -> AnswerFile:
    document: dict[str, Any] = {
        "version": 1,
        "target": "production",
        "install_dir": str(tmp_path / "install"),
        "domain": "codequal.corp.test",
        "monitoring": {"enabled": False},
        "release": {"version": RELEASE},
        **sections,
    }
    return AnswerFile.model_validate(document)


def _inputs(answers: AnswerFile, **extra: Any) -> LiveInput:
    return LiveInput(answers=answers, release=load_release(RELEASE), timeout=4.0, **extra)


# --- images: a registry with TLS and htpasswd --------------------------------------------


@pytest.fixture
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRegistry]:
    try:
        with secure_registry(tmp_path_factory.mktemp("secure-registry")) as running:
            yield running
    except RegistryStartError as e:
        pytest.fail(str(e), pytrace=False)


def _release_repositories() -> list[tuple[str, str]]:
    release = load_release(RELEASE)
    found = []
    for name in ("codequal", "deepwiki", "nginx", "postgres"):
        repository, _, tag = release.services[name].image.partition(":")
        found.append((repository, tag))
    return sorted(set(found))


def _mirror_answers(tmp_path: Path, registry: SecureRegistry, *, ca: bool = True) -> AnswerFile:
    section: dict[str, Any] = {"mirror": registry.address, "username": registry.username}
    if ca:
        section["ca_file"] = str(registry.ca.cert)
    return _answers(tmp_path, registry=section)


def test_images_on_a_mirror_with_the_right_credentials_and_ca_pass(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    for repository, tag in _release_repositories():
        tls_registry.push_image(repository, tag)
    result = check_images(
        _inputs(
            _mirror_answers(tmp_path, tls_registry),
            secrets={"registry_password": tls_registry.password},
        )
    )
    assert result.status == "pass", result
    assert f"in {tls_registry.address}" in (result.measured or "")
    assert tls_registry.password not in json.dumps(result.to_dict())


def test_a_wrong_registry_password_is_a_fail_naming_401(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    for repository, tag in _release_repositories():
        tls_registry.push_image(repository, tag)
    result = check_images(
        _inputs(_mirror_answers(tmp_path, tls_registry), secrets={"registry_password": "wrong"})
    )
    assert result.status == "fail"
    assert "401" in (result.measured or "")
    assert f"as {tls_registry.username}" in (result.measured or "")
    assert "registry_password" in (result.hint or "")


def test_a_mirror_without_its_ca_names_the_tls_error(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    result = check_images(
        _inputs(
            _mirror_answers(tmp_path, tls_registry, ca=False),
            secrets={"registry_password": tls_registry.password},
        )
    )
    assert result.status == "fail"
    measured = result.measured or ""
    assert f"could not reach {tls_registry.address} (TLS:" in measured
    assert "certificate is not trusted" in measured
    assert "registry.ca_file" in (result.hint or "")


def test_an_image_missing_from_the_mirror_names_the_reference_and_404(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    repositories = _release_repositories()
    missing_repository, missing_tag = repositories[-1]
    for repository, tag in repositories[:-1]:
        tls_registry.push_image(repository, tag)
    result = check_images(
        _inputs(
            _mirror_answers(tmp_path, tls_registry),
            secrets={"registry_password": tls_registry.password},
        )
    )
    assert result.status == "fail"
    reference = f"{tls_registry.address}/{missing_repository}:{missing_tag}"
    assert f"404: {reference} is not in {tls_registry.address}" in (result.measured or "")
    assert "1 of" in (result.measured or "")


# --- database: the test PostgreSQL image as a managed database ----------------------------


@dataclasses.dataclass(frozen=True)
class ManagedDatabase:
    port: int
    password: str
    reader_password: str


@pytest.fixture(scope="module")
def managed_database(docker_engine: Any, test_images: BuildReport) -> Iterator[ManagedDatabase]:
    import secrets

    password = secrets.token_urlsafe(12)
    reader_password = secrets.token_urlsafe(12)
    suffix = secrets.token_hex(4)
    # A network of its own: the test does not depend on the default bridge (docker0).
    network = docker_engine.networks.create(
        f"codequal-live-{suffix}", labels={"org.codequal.test": "live-checks"}
    )
    container = docker_engine.containers.run(
        POSTGRES,
        detach=True,
        name=f"codequal-live-db-{suffix}",
        network=network.name,
        environment={
            "POSTGRES_USER": "codequal",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": "codequal",
        },
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels={"org.codequal.test": "live-checks"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            container.reload()
            ready = container.exec_run(
                ["psql", "-U", "codequal", "-h", "127.0.0.1", "-d", "codequal", "-c", "SELECT 1"],
                environment={"PGPASSWORD": password},
            )
            if ready.exit_code == 0:
                break
            if time.monotonic() > deadline or container.status == "exited":
                pytest.fail(f"the test database did not start: {container.logs()[-2000:]!r}")
            time.sleep(0.5)
        made = container.exec_run(
            [
                "psql",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "codequal",
                "-d",
                "codequal",
                "-c",
                f"CREATE ROLE reader LOGIN PASSWORD '{reader_password}'",
            ],
        )
        assert made.exit_code == 0, made.output
        port = int(container.ports["5432/tcp"][0]["HostPort"])
        yield ManagedDatabase(port, password, reader_password)
    finally:
        container.remove(force=True, v=True)
        network.remove()


def _database_answers(tmp_path: Path, db: ManagedDatabase, **database: Any) -> AnswerFile:
    section = {
        "kind": "postgres",
        "managed": True,
        "host": "localhost",
        "port": db.port,
        "name": "codequal",
        "user": "codequal",
        "sslmode": "prefer",
        **database,
    }
    return _answers(tmp_path, database=section)


def test_the_managed_database_with_the_right_password_passes_with_its_version(
    managed_database: ManagedDatabase, tmp_path: Path, test_releases_dir: Path
) -> None:
    result = check_database(
        _inputs(
            _database_answers(tmp_path, managed_database),
            secrets={"database_password": managed_database.password},
        )
    )
    assert result.status == "pass", result
    assert (result.measured or "").startswith("PostgreSQL 15")
    assert result.details["via"] == f"container {POSTGRES}"
    assert result.details["server_version"].startswith("15")
    assert managed_database.password not in json.dumps(result.to_dict())


def test_database_failures_each_read_differently(
    managed_database: ManagedDatabase, tmp_path: Path, test_releases_dir: Path
) -> None:
    wrong = check_database(
        _inputs(
            _database_answers(tmp_path, managed_database),
            secrets={"database_password": "not-the-password"},
        )
    )
    no_create = check_database(
        _inputs(
            _database_answers(tmp_path, managed_database, user="reader"),
            secrets={"database_password": managed_database.reader_password},
        )
    )
    no_tls = check_database(
        _inputs(
            _database_answers(tmp_path, managed_database, sslmode="verify-full"),
            secrets={"database_password": managed_database.password},
        )
    )
    assert [wrong.status, no_create.status, no_tls.status] == ["fail", "fail", "fail"]
    assert "the server refused the password for user codequal" in (wrong.measured or "")
    assert "reader may not create tables in codequal" in (no_create.measured or "")
    assert "GRANT CREATE ON DATABASE codequal TO reader" in (no_create.hint or "")
    assert "does not offer TLS, but sslmode verify-full requires it" in (no_tls.measured or "")
    assert len({wrong.measured, no_create.measured, no_tls.measured}) == 3
    assert len({wrong.hint, no_create.hint, no_tls.hint}) == 3


# --- ldap: Debian's slapd, seeded here -----------------------------------------------------


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    try:
        with ldap_server(tmp_path_factory.mktemp("slapd")) as running:
            yield running
    except LdapStartError as e:
        pytest.fail(str(e), pytrace=False)


def _ldap_check(server: LdapServer, url: str, base: str, password: str, ca: bool = True) -> Any:
    section: dict[str, Any] = {
        "enabled": True,
        "url": url,
        "bind_dn": server.bind_dn,
        "user_base_dn": base,
    }
    if ca:
        section["ca_file"] = str(server.ca.cert)
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.corp.test", "ldap": section}
    )
    return check_ldap(
        LiveInput(
            answers=answers,
            release=load_release(None),
            secrets={"ldap_bind_password": password},
            timeout=4.0,
        )
    )


def test_ldap_binds_and_finds_people_over_ldaps_and_starttls(directory: LdapServer) -> None:
    for url, how in ((directory.ldaps_url, "ldaps"), (directory.starttls_url, "StartTLS")):
        result = _ldap_check(directory, url, PEOPLE_DN, directory.password)
        assert result.status == "pass", result
        assert f"over {how}" in (result.measured or "")


def test_ldap_failures_each_read_differently(directory: LdapServer) -> None:
    wrong = _ldap_check(directory, directory.ldaps_url, PEOPLE_DN, "not-the-password")
    empty = _ldap_check(directory, directory.ldaps_url, EMPTY_DN, directory.password)
    untrusted = _ldap_check(directory, directory.ldaps_url, PEOPLE_DN, directory.password, False)
    assert [wrong.status, empty.status, untrusted.status] == ["fail", "fail", "fail"]
    assert "refused the bind" in (wrong.measured or "")
    assert "invalid credentials" in (wrong.measured or "")
    assert f"no entries under {EMPTY_DN}" in (empty.measured or "")
    assert "TLS:" in (untrusted.measured or "")
    assert "ldap.ca_file" in (untrusted.hint or "")
    assert directory.password not in json.dumps([wrong.to_dict(), empty.to_dict()])


# --- no network at all --------------------------------------------------------------------

EVERY_CHECK_SCRIPT = """
import json, os, sys, time
from installer.answers import AnswerFile
from installer.live.result import LiveInput
from installer.live.run import run_live_checks
from installer.release import load_release

documents = json.loads(sys.argv[1])
out = []
for document in documents:
    answers = AnswerFile.model_validate(document)
    inputs = LiveInput(
        answers=answers,
        release=load_release(answers.release.version),
        secrets={"database_password": "pw", "ldap_bind_password": "pw"},
        bundle=os.environ.get("LIVE_BUNDLE") or None,
        environ=dict(os.environ),
    )
    started = time.monotonic()
    results = run_live_checks(inputs)
    out.append({"seconds": time.monotonic() - started,
                "results": [r.to_dict() for r in results]})
print(json.dumps(out))
"""


def _offline_documents(tmp_path: Path, cert: Path, key: Path) -> list[dict[str, Any]]:
    shared = {
        "version": 1,
        "domain": "codequal.corp.example",
        "install_dir": str(tmp_path / "install"),
        "database": {"kind": "postgres", "managed": True, "host": "db.corp.example"},
        "deepwiki": {"mode": "external", "url": "https://deepwiki.corp.example/"},
        "supabase": {"url": "https://project.supabase.co"},
        "tls": {"mode": "provided", "cert_file": str(cert), "key_file": str(key)},
        # psql comes from a container of this (local) image, not from this machine.
        "release": {"images": {"postgres": POSTGRES}},
    }
    return [
        {**shared, "target": "production"},
        {
            **shared,
            "target": "kubernetes",
            "registry": {"mirror": "registry.corp.example:5000"},
            "ldap": {
                "enabled": True,
                "url": "ldaps://ldap.corp.example",
                "bind_dn": "cn=svc,dc=corp,dc=example",
                "user_base_dn": "ou=people,dc=corp,dc=example",
            },
        },
    ]


# In a network namespace of its own: loopback up, every packet to 127.0.0.9 dropped, so
# each connection waits for its timeout (a firewall that drops, not one that refuses).
DROPPING = 'ip link set lo up && iptables -A OUTPUT -o lo -d 127.0.0.9 -j DROP && exec "$0" "$@"'


def _run_offline(
    documents: list[dict[str, Any]], bundle: Path | None = None, *, dropping: bool = False
) -> list[Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("LIVE_BUNDLE", None)
    if bundle is not None:
        env["LIVE_BUNDLE"] = str(bundle)
    inside = ["sh", "-c", DROPPING] if dropping else []
    done = subprocess.run(
        ["unshare", "-n", *inside, sys.executable, "-c", EVERY_CHECK_SCRIPT, json.dumps(documents)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return list(json.loads(done.stdout))


def test_without_a_network_every_check_answers_within_ten_seconds_in_operator_words(
    tmp_path: Path, test_images: BuildReport
) -> None:
    from tests.support.tls_files import make_ca, make_leaf

    leaf = make_leaf(tmp_path, make_ca(tmp_path / "ca"), ["codequal.corp.example"])
    runs = _run_offline(_offline_documents(tmp_path, leaf.cert, leaf.key))
    for run in runs:
        assert run["seconds"] < 10, run
        by_name = {r["name"]: r for r in run["results"]}
        for name in ("images", "database", "deepwiki", "supabase"):
            assert by_name[name]["status"] in ("fail", "warn"), by_name[name]
        for name in ("deepwiki", "supabase"):
            assert by_name[name]["measured"].startswith("could not reach https://"), by_name[name]
            assert "(DNS:" in by_name[name]["measured"]
        assert "db.corp.example does not resolve" in by_name["database"]["measured"]
    production = {r["name"]: r for r in runs[0]["results"]}
    images = production["images"]
    assert images["status"] == "fail"
    for registry in ("ghcr.io", "docker.io"):
        assert f"could not reach {registry} (DNS:" in images["measured"]
    assert "offline bundle" in images["hint"]
    kubernetes = {r["name"]: r for r in runs[1]["results"]}
    # The cluster's nodes pull: a mirror this machine cannot reach is a warning there.
    assert kubernetes["images"]["status"] == "warn"
    assert "could not reach registry.corp.example:5000 (DNS:" in kubernetes["images"]["measured"]
    assert kubernetes["ldap"]["status"] == "fail"
    assert "could not reach ldap.corp.example:636 (DNS:" in kubernetes["ldap"]["measured"]


def _bundle_listing(path: Path, references: list[str]) -> Path:
    from installer.bundle.create import release_text
    from installer.bundle.format import METADATA_NAME, BundleMetadata, ImageInfo
    from installer.release import load_release
    from tests.bundle_helpers import file_member, rewrite_bundle, write_bundle

    # Every bundle carries its release manifest (what an install from it installs): the
    # installer's own release, under the version write_bundle records.
    manifest = load_release(None).model_copy(update={"version": "0.0.0-test"})
    members = [file_member("images/x", b"x"), file_member("release.yaml", release_text(manifest))]
    plain = write_bundle(path.with_suffix(".plain"), members)
    images = [
        ImageInfo(
            references=[reference],
            id="sha256:" + "0" * 64,
            config="x",
            config_size=1,
            layers=[],
            layer_paths=[],
            manifest_digest="sha256:" + "1" * 64,
        )
        for reference in references
    ]

    def listing(members: list[Any]) -> list[Any]:
        edited = []
        for member in members:
            if member.info.name == METADATA_NAME:
                metadata = BundleMetadata.from_bytes(member.data)
                data = dataclasses.replace(metadata, images=images).to_bytes()
                edited.append(file_member(METADATA_NAME, data))
            else:
                edited.append(member)
        return edited

    return rewrite_bundle(plain, path, listing)


def test_without_a_network_the_images_check_passes_with_the_bundle_given(tmp_path: Path) -> None:
    from installer.release import load_release as release
    from tests.support.tls_files import make_ca, make_leaf

    production = _offline_documents(tmp_path, *_pem(tmp_path, make_ca, make_leaf))[0]
    references = sorted({s.image for s in release(None).services.values()})
    bundle = _bundle_listing(tmp_path / "codequal.bundle", references)
    run = _run_offline([production], bundle)[0]
    images = {r["name"]: r for r in run["results"]}["images"]
    assert images["status"] == "pass", images
    assert "in the bundle" in images["measured"]


def _pem(tmp_path: Path, make_ca: Any, make_leaf: Any) -> tuple[Path, Path]:
    leaf = make_leaf(tmp_path, make_ca(tmp_path / "ca"), ["codequal.corp.example"])
    return leaf.cert, leaf.key


def test_on_a_network_that_drops_every_packet_the_set_still_answers_within_ten_seconds(
    tmp_path: Path, test_images: BuildReport
) -> None:
    silent = "127.0.0.9"
    document = {
        "version": 1,
        "target": "kubernetes",
        "domain": "codequal.corp.example",
        "registry": {"mirror": f"{silent}:5000"},
        "database": {"kind": "postgres", "managed": True, "host": silent},
        "release": {"images": {"postgres": POSTGRES}},
        "deepwiki": {"mode": "external", "url": f"https://{silent}/"},
        "supabase": {"url": f"https://{silent}:8443"},
        "ldap": {
            "enabled": True,
            "url": f"ldaps://{silent}",
            "bind_dn": "cn=svc,dc=corp,dc=example",
            "user_base_dn": "ou=people,dc=corp,dc=example",
        },
    }
    run = _run_offline([document], dropping=True)[0]
    assert run["seconds"] < 10, run
    by_name = {r["name"]: r for r in run["results"]}
    assert "did not answer within 4 s" in by_name["images"]["measured"]
    # On a Kubernetes target the pods connect to DeepWiki, Supabase and the database, from
    # the cluster's network: not reaching them from here warns; the directory fails.
    for name, status in (("deepwiki", "warn"), ("supabase", "warn"), ("ldap", "fail")):
        assert by_name[name]["status"] == status, by_name[name]
        assert "did not answer" in by_name[name]["measured"], by_name[name]
    # psql runs in a container, on the host's network (not this namespace): refused there.
    assert by_name["database"]["status"] == "warn", by_name["database"]
    assert "refused the connection" in by_name["database"]["measured"], by_name["database"]


# --- the live checks in check --answers and apply (acceptance 1) ---------------------------

# Everything this machine is judged on, skipped: the test is about the answers' checks.
HOST_CHECKS = ["cpu", "memory", "disk", "docker_disk", "dns", "ports", "cgroup", "docker"]


def _cli_offline(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    return subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "installer", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _offline_answer_file(tmp_path: Path, **extra: Any) -> Path:
    import yaml

    document = {
        "version": 1,
        "target": "production",
        "install_dir": str(tmp_path / "install"),
        "domain": "codequal.corp.example",
        "monitoring": {"enabled": False},
        "checks": {"skip": HOST_CHECKS},
        **extra,
    }
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_check_and_apply_without_a_network_exit_3_naming_each_registry(tmp_path: Path) -> None:
    answers = _offline_answer_file(tmp_path)
    check = _cli_offline("check", "--answers", str(answers), "--json")
    assert check.returncode == 3, check.stderr
    report = json.loads(check.stdout)
    images = next(r for r in report["checks"] if r["name"] == "images")
    assert images["status"] == "fail"
    for registry in ("ghcr.io", "docker.io"):
        assert f"could not reach {registry} (DNS:" in images["measured"]
    assert "offline bundle" in images["hint"]

    apply = _cli_offline("apply", "--answers", str(answers), "--yes")
    assert apply.returncode == 3, apply.stdout + apply.stderr
    output = apply.stdout + apply.stderr
    assert "prerequisites not met: images" in output
    for registry in ("ghcr.io", "docker.io"):
        assert f"could not reach {registry} (DNS:" in output
    assert "Traceback" not in output
    # Nothing of the install was written: only the run's own log and lock under state/.
    install = tmp_path / "install"
    assert sorted(p.name for p in install.iterdir()) == ["state"]
    assert not list(install.glob("*.yml")) and not (install / ".env").exists()


def test_check_without_a_network_passes_the_images_with_the_bundle_given(tmp_path: Path) -> None:
    from installer.release import load_release as release

    references = sorted({s.image for s in release(None).services.values()})
    bundle = _bundle_listing(tmp_path / "codequal.bundle", references)
    answers = _offline_answer_file(tmp_path, airgap={"enabled": True, "bundle": str(bundle)})
    check = _cli_offline("check", "--answers", str(answers), "--json")
    report = json.loads(check.stdout)
    images = next(r for r in report["checks"] if r["name"] == "images")
    assert images["status"] == "pass", images
    assert "in the bundle" in images["measured"]


def test_a_live_check_is_skipped_by_name(tmp_path: Path) -> None:
    answers = _offline_answer_file(tmp_path)
    check = _cli_offline("check", "--answers", str(answers), "--json", "--skip", "images")
    report = json.loads(check.stdout)
    images = next(r for r in report["checks"] if r["name"] == "images")
    assert images["status"] == "skipped"
    assert check.returncode == 0, check.stdout
