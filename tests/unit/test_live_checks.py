"""Live checks' common parts: failure kinds, proxy routes, the parallel run and its deadline;
with local sockets standing in for hosts that fail in each way."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.answers import AnswerFile
from installer.live.net import get_url, proxy_for
from installer.live.proxy import shown
from installer.live.result import LiveInput, LiveResult
from installer.live.run import LIVE_CHECK_NAMES, run_live_checks
from installer.release import load_release
from tests.support.tls_files import make_ca, make_leaf


def _inputs(**answers: object) -> LiveInput:
    document = {"version": 1, "target": "development", **answers}
    return LiveInput(
        answers=AnswerFile.model_validate(document), release=load_release(None), timeout=1.0
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a TLS handshake hangs)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_each_kind_of_unreachable_is_named(silent_port: int, closed_port: int) -> None:
    env: dict[str, str] = {}
    dns = get_url("https://nothing-here.invalid/", environ=env, timeout=2)
    assert dns.failure is not None and dns.failure.kind == "DNS"
    assert "nothing-here.invalid does not resolve" in str(dns.failure)
    refused = get_url(f"https://127.0.0.1:{closed_port}/", environ=env, timeout=2)
    assert refused.failure is not None and refused.failure.kind == "TCP"
    assert "refused the connection" in str(refused.failure)
    silent = get_url(f"https://127.0.0.1:{silent_port}/", environ=env, timeout=0.5)
    assert silent.failure is not None and silent.failure.kind == "TCP"
    assert "did not answer within 0.5 s" in str(silent.failure)


def test_an_untrusted_certificate_is_a_tls_failure_and_the_ca_fixes_it(tmp_path: Path) -> None:
    import http.server
    import ssl
    import threading

    ca = make_ca(tmp_path)
    leaf = make_leaf(tmp_path, ca, ["127.0.0.1"])
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf.cert, leaf.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/"
    try:
        untrusted = get_url(url, environ={}, timeout=3)
        assert untrusted.failure is not None and untrusted.failure.kind == "TLS"
        assert "certificate is not trusted" in str(untrusted.failure)
        trusted = get_url(url, environ={}, timeout=3, ca_file=str(ca.cert))
        assert trusted.failure is None and trusted.status is not None
    finally:
        server.shutdown()
        server.server_close()


def test_proxy_routes_follow_no_proxy_and_the_lowercase_variable() -> None:
    env = {
        "HTTPS_PROXY": "http://upper:3128",
        "https_proxy": "http://user:secret@lower.corp:3128",
        "NO_PROXY": "registry.corp.local,.internal",
    }
    assert proxy_for("https://ghcr.io/v2/", env) == "http://user:secret@lower.corp:3128"
    assert proxy_for("https://registry.corp.local:5000/v2/", env) is None
    assert proxy_for("https://db.internal/", env) is None
    assert proxy_for("http://ghcr.io/", env) is None  # no http proxy set
    assert shown("http://user:secret@lower.corp:3128") == "http://lower.corp:3128"
    assert shown(None) == "direct"


def test_the_proxy_check_names_the_route_of_each_registry() -> None:
    inputs = _inputs(
        target="kubernetes",
        domain="codequal.corp.test",
        registry={"mirror": "registry.corp.local:5000"},
        deepwiki={"mode": "external", "url": "https://deepwiki.corp.test/"},
    )
    from installer.live.proxy import check_proxy

    env = {"https_proxy": "http://u:p@proxy.corp:3128", "no_proxy": "registry.corp.local"}
    result = check_proxy(LiveInput(**{**inputs.__dict__, "environ": env}))
    assert result.status == "pass"
    assert "registry.corp.local:5000: direct" in (result.measured or "")
    assert "deepwiki.corp.test: http://proxy.corp:3128" in (result.measured or "")
    assert "p@" not in str(result.to_dict())


def test_the_set_answers_within_its_deadline_and_never_raises() -> None:
    def slow(inputs: LiveInput) -> LiveResult:
        time.sleep(30)
        raise AssertionError("never reached")

    def broken(inputs: LiveInput) -> LiveResult:
        raise KeyError("boom")

    def fine(inputs: LiveInput) -> LiveResult:
        return LiveResult("fine", "pass", "ok", None)

    started = time.monotonic()
    results = run_live_checks(
        _inputs(),
        checks={"database": slow, "broken": broken, "fine": fine, "tls": fine},
        skip=["tls"],
        deadline=1.0,
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    by_name = {r.name: r for r in results}
    assert by_name["database"].status == "fail"
    assert "could not reach" in (by_name["database"].measured or "")
    assert "within 1 s" in (by_name["database"].measured or "")
    assert by_name["broken"].status == "fail"
    assert "KeyError" in (by_name["broken"].measured or "")
    assert by_name["fine"].status == "pass"
    assert by_name["tls"].status == "skipped"


def test_a_domain_that_resolves_nowhere_warns_on_development_and_fails_elsewhere() -> None:
    from installer.checks.measurements import Resolution
    from installer.checks.requirements import Requirements, evaluate_dns

    nowhere = Resolution("codequal.invalid", error="nxdomain")
    development = evaluate_dns(nowhere, Requirements.for_target("development"))
    production = evaluate_dns(nowhere, Requirements.for_target("production"))
    assert (development.status, production.status) == ("warn", "fail")
    assert "does not resolve" in (development.measured or "")


def test_every_check_has_a_name_the_table_can_register() -> None:
    assert LIVE_CHECK_NAMES == (
        "images",
        "database",
        "ldap",
        "tls",
        "proxy",
        "deepwiki",
        "supabase",
        "oidc",
    )


def test_the_database_password_goes_in_a_private_password_file_removed_afterwards() -> None:
    import stat

    from installer.live.database import password_file

    with password_file("p:w\\d") as path:
        assert path is not None
        mode = stat.S_IMODE(Path(path).stat().st_mode)
        assert mode == 0o600
        assert Path(path).read_text() == "*:*:*:*:p\\:w\\\\d\n"
    assert not Path(path).exists()
    with password_file(None) as nothing:
        assert nothing is None


def test_the_live_input_takes_secrets_from_the_environment_and_never_shows_them() -> None:
    answers = AnswerFile.model_validate({"version": 1, "target": "development"})
    env = {"CODEQUAL_DATABASE_PASSWORD": "s3cret-value", "HTTPS_PROXY": "http://proxy:3128"}
    inputs = LiveInput.for_answers(answers, environ=env)
    assert inputs.secret("database_password") == "s3cret-value"
    assert inputs.environ["HTTPS_PROXY"] == "http://proxy:3128"
    assert "s3cret-value" not in repr(inputs)


def test_air_gapped_images_come_from_the_bundle_only(tmp_path: Path) -> None:
    from installer.live.images import check_images

    missing = tmp_path / "gone.bundle"
    inputs = _inputs(
        target="kubernetes",
        domain="codequal.corp.test",
        registry={"mirror": "registry.corp.test:5000"},
        airgap={"enabled": True, "bundle": str(missing)},
    )
    result = check_images(inputs)
    assert result.status == "fail"
    assert "not in the offline bundle" in (result.measured or "")
    assert str(missing) in (result.measured or "")


@pytest.mark.parametrize(
    ("host", "plain"),
    [
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("registry.corp.example:5000", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_a_loopback_registry_may_answer_in_plain_http_as_the_engine_allows(
    host: str, plain: bool
) -> None:
    from installer.engine.registry import RegistryMirror
    from installer.live.registry_access import endpoint_for

    endpoint = endpoint_for(RegistryMirror(), host)
    assert endpoint.plain_http is plain
    assert endpoint.insecure is False  # a certificate presented is still verified


@pytest.mark.parametrize(
    ("target", "stderr", "status"),
    [
        ("production", 'could not translate host name "pg.corp" to address', "fail"),
        ("kubernetes", 'could not translate host name "pg.corp" to address', "warn"),
        ("kubernetes", "connection to server failed: Connection refused", "warn"),
        ("kubernetes", 'password authentication failed for user "codequal"', "fail"),
    ],
)
def test_a_database_this_machine_cannot_reach_only_warns_where_the_pods_connect(
    monkeypatch: pytest.MonkeyPatch, target: str, stderr: str, status: str
) -> None:
    from installer.live import database

    monkeypatch.setattr(
        database, "run_psql", lambda _inputs, _query: database.PsqlRun(2, "", stderr, "psql")
    )
    extra: dict[str, object] = {"domain": "codequal.corp.example"}
    if target == "kubernetes":
        extra["kubernetes"] = {"namespace": "cq"}
    inputs = _inputs(
        target=target,
        database={"kind": "postgres", "managed": True, "host": "pg.corp"},
        **extra,
    )
    result = database.check_database(inputs)
    assert result.status == status, result
    assert "could not connect as codequal@pg.corp:5432/codequal" in (result.measured or "")
