"""The tls live check on certificate files made here: each way a provided certificate can
be wrong is reported distinctly (issue 16, acceptance 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.answers import AnswerFile
from installer.live.result import LiveInput, LiveResult
from installer.live.tls import WARN_DAYS, check_tls, covers
from installer.release import load_release
from tests.support.tls_files import Pem, make_ca, make_leaf, other_key

DOMAIN = "codequal.corp.test"


def _check(cert: Path, key: Path, ca: Pem | None, domain: str = DOMAIN) -> LiveResult:
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "production",
            "domain": domain,
            "tls": {"mode": "provided", "cert_file": str(cert), "key_file": str(key)},
        }
    )
    inputs = LiveInput(
        answers=answers,
        release=load_release(None),
        tls_ca_file=str(ca.cert) if ca else None,
    )
    return check_tls(inputs)


@pytest.fixture
def ca(tmp_path: Path) -> Pem:
    return make_ca(tmp_path / "ca")


def test_a_good_certificate_passes(ca: Pem, tmp_path: Path) -> None:
    leaf = make_leaf(tmp_path, ca, [DOMAIN], days=90)
    result = _check(leaf.cert, leaf.key, ca)
    assert result.status == "pass", result
    assert DOMAIN in (result.measured or "") and "valid 89 more days" in (result.measured or "")


def test_a_key_of_another_certificate_fails(ca: Pem, tmp_path: Path) -> None:
    leaf = make_leaf(tmp_path, ca, [DOMAIN])
    result = _check(leaf.cert, other_key(tmp_path), ca)
    assert result.status == "fail"
    assert "the key does not match" in (result.measured or "")


def test_an_expired_certificate_fails(ca: Pem, tmp_path: Path) -> None:
    leaf = make_leaf(tmp_path, ca, [DOMAIN], days=-3)
    result = _check(leaf.cert, leaf.key, ca)
    assert result.status == "fail"
    assert "the certificate expired on" in (result.measured or "")
    assert result.hint == "renew the certificate"


def test_a_certificate_for_another_domain_fails(ca: Pem, tmp_path: Path) -> None:
    leaf = make_leaf(tmp_path, ca, ["other.corp.test", "*.elsewhere.test"])
    result = _check(leaf.cert, leaf.key, ca)
    assert result.status == "fail"
    assert f"does not cover {DOMAIN}" in (result.measured or "")
    assert "other.corp.test, *.elsewhere.test" in (result.measured or "")


def test_a_certificate_expiring_in_seven_days_warns(ca: Pem, tmp_path: Path) -> None:
    leaf = make_leaf(tmp_path, ca, [DOMAIN], days=7.5)
    result = _check(leaf.cert, leaf.key, ca)
    assert result.status == "warn"
    assert "expires in 7 days" in (result.measured or "")
    assert str(WARN_DAYS) in (result.required or "")


def test_a_chain_that_does_not_lead_to_the_ca_fails(ca: Pem, tmp_path: Path) -> None:
    stranger = make_ca(tmp_path / "stranger", "Somebody Else's CA")
    leaf = make_leaf(tmp_path, stranger, [DOMAIN])
    result = _check(leaf.cert, leaf.key, ca)
    assert result.status == "fail"
    assert "the chain does not verify" in (result.measured or "")


def test_the_five_failures_read_differently(ca: Pem, tmp_path: Path) -> None:
    good = make_leaf(tmp_path / "good", ca, [DOMAIN])
    cases = [
        _check(good.cert, other_key(tmp_path), ca),
        _check(*_pair(make_leaf(tmp_path / "old", ca, [DOMAIN], days=-1)), ca),
        _check(*_pair(make_leaf(tmp_path / "name", ca, ["x.test"])), ca),
        _check(*_pair(make_leaf(tmp_path / "soon", ca, [DOMAIN], days=7.5)), ca),
        _check(*_pair(make_leaf(tmp_path / "chain", make_ca(tmp_path / "s", "S"), [DOMAIN])), ca),
    ]
    assert [c.status for c in cases] == ["fail", "fail", "fail", "warn", "fail"]
    assert len({c.measured for c in cases}) == 5


def _pair(pem: Pem) -> tuple[Path, Path]:
    return pem.cert, pem.key


def test_not_provided_is_not_applicable() -> None:
    answers = AnswerFile.model_validate({"version": 1, "target": "production", "domain": DOMAIN})
    result = check_tls(LiveInput(answers=answers, release=load_release(None)))
    assert result.status == "skipped"


@pytest.mark.parametrize(
    ("names", "domain", "expected"),
    [
        (["a.test"], "a.test", True),
        (["A.Test."], "a.test", True),
        (["*.corp.test"], "x.corp.test", True),
        (["*.corp.test"], "corp.test", False),
        (["*.corp.test"], "y.x.corp.test", False),
        (["b.test"], "a.test", False),
    ],
)
def test_names_cover_a_domain_with_one_leading_wildcard(
    names: list[str], domain: str, expected: bool
) -> None:
    assert covers(names, domain) is expected


def test_without_a_ca_file_a_chain_to_an_untrusted_ca_only_warns(ca: Pem, tmp_path: Path) -> None:
    leaf = make_leaf(tmp_path, ca, [DOMAIN])
    result = _check(leaf.cert, leaf.key, None)
    assert result.status == "warn"
    assert "does not lead to a CA this machine trusts" in (result.measured or "")
