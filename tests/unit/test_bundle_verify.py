"""Verify, inspect and parts on bundles made without Docker: every kind of damage is exit 4
with a message naming it; a good bundle passes."""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import pytest

from installer.bundle import inspect_bundle, verify_bundle
from installer.bundle.format import FOOTER_SIZE, SIGNATURE_NAME, SUMS_NAME, parse_size
from installer.bundle.signing import generate_key_pair
from installer.errors import BundleIntegrityError, ExitCode, UsageError
from tests.bundle_helpers import (
    RawMember,
    file_member,
    link_member,
    read_members,
    rewrite_bundle,
    write_bundle,
)
from tests.unit.cli_helpers import run_cli


def incompressible(size: int) -> bytes:
    blocks = (hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def members() -> list[RawMember]:
    return [
        file_member("answers.example.yaml", b"version: 1\n"),
        file_member("images/a/layer.tar", incompressible(2_500_000)),
        link_member("images/b/layer.tar", "../a/layer.tar"),
        file_member("images/manifest.json", b"[]"),
        file_member("release.yaml", b"{}\n"),
    ]


def bootstrap_members() -> list[RawMember]:
    return [
        file_member("codequal-installer", b"#!/bin/sh\nexit 0\n", mode=0o755),
        file_member("wheelhouse/zstandard-0-cp311-none-any.whl", incompressible(300_000)),
    ]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_key_pair(tmp_path / "signer")


@pytest.fixture
def bundle(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    """Laid out as ``bundle create`` makes it: a bootstrap frame and a signed body hash."""
    return write_bundle(
        tmp_path / "good.bundle",
        members(),
        sign_key=keys[0],
        bootstrap=bootstrap_members(),
        body_hash=True,
    )


def problems_of(error: BundleIntegrityError) -> str:
    return "\n".join([error.message, *error.problems])


def test_a_good_signed_bundle_verifies_with_its_key(bundle: Path, keys: tuple[Path, Path]) -> None:
    report = verify_bundle(bundle, key=keys[1])
    assert report.verified and report.method == "body hash"
    assert "signature valid" in report.signature
    assert verify_bundle(bundle, deep=True).method == "member by member"
    result = run_cli("bundle", "verify", str(bundle), "--key", str(keys[1]))
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout and "(body hash)" in result.stdout
    result = run_cli("bundle", "verify", "--deep", str(bundle))
    assert result.exit_code == 0, result.output
    assert "(member by member)" in result.stdout


def test_a_bundle_without_a_body_hash_is_checked_member_by_member(tmp_path: Path) -> None:
    old = write_bundle(tmp_path / "old.bundle", members(), bootstrap=bootstrap_members())
    assert verify_bundle(old).method == "member by member"


def test_standard_tools_read_the_bootstrap_and_the_body(bundle: Path, tmp_path: Path) -> None:
    """The bootstrap is a plain tar from byte 8 (no zstd needed); the body decodes with any
    zstd decoder, which skips the bootstrap frame."""
    import io

    import zstandard

    raw = bundle.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(raw[8:]), mode="r|") as tar:
        names = [info.name for info in tar]
    assert names == ["codequal-installer", "wheelhouse/zstandard-0-cp311-none-any.whl"]
    body = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
    with tarfile.open(fileobj=body, mode="r|") as tar:
        names = [info.name for info in tar]
    assert names[0] == "answers.example.yaml"
    assert names[-3:] == [SUMS_NAME, "metadata.json", SIGNATURE_NAME]
    assert "codequal-installer" not in names


def test_the_bootstrap_members_are_in_the_checksum_list(bundle: Path) -> None:
    from installer.bundle.reader import locate_bundle, read_index

    index = read_index(locate_bundle(bundle))
    for member in bootstrap_members():
        assert index.sums[member.info.name] == hashlib.sha256(member.data).hexdigest()
    assert index.metadata.bootstrap_size > 300_000


def test_the_writer_is_reproducible(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    one = write_bundle(tmp_path / "one.bundle", members(), sign_key=keys[0])
    two = write_bundle(tmp_path / "two.bundle", members(), sign_key=keys[0])
    assert one.read_bytes() == two.read_bytes()
    infos = [m.info for m in read_members(one)]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname) for i in infos if i.isreg()} <= {
        (0, 0, 0, "", "")
    } | {(i.mtime, i.uid, i.gid, i.uname, i.gname) for i in infos if i.name != SUMS_NAME}


@pytest.mark.parametrize("victim", ["images/a/layer.tar", "release.yaml", "codequal-installer"])
def test_one_flipped_byte_in_a_member_is_named(bundle: Path, tmp_path: Path, victim: str) -> None:
    def flip(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.name == victim:
                data = bytearray(member.data)
                data[len(data) // 2] ^= 0x01
                member.data = bytes(data)
        return found

    bad = rewrite_bundle(bundle, tmp_path / "flipped.bundle", flip, flip)
    with pytest.raises(BundleIntegrityError) as caught:
        verify_bundle(bad)
    # The body hash differs, so verify reads member by member and names the damage: that
    # member alone (members share one hasher thread; none inherits another's bytes).
    assert caught.value.problems == [f"member {victim!r}: SHA-256 mismatch (content changed)"]
    result = run_cli("bundle", "verify", str(bad))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert victim in result.stderr


def test_an_added_member_is_named(bundle: Path, tmp_path: Path) -> None:
    def add(found: list[RawMember]) -> list[RawMember]:
        return [*found[:2], file_member("images/evil.tar", b"payload"), *found[2:]]

    bad = rewrite_bundle(bundle, tmp_path / "added.bundle", add)
    with pytest.raises(BundleIntegrityError) as caught:
        verify_bundle(bad)
    assert "extra member 'images/evil.tar'" in problems_of(caught.value)


def test_an_added_link_and_a_changed_link_are_named(bundle: Path, tmp_path: Path) -> None:
    def add(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.issym():
                member.info.linkname = "../manifest.json"
        return [*found, link_member("images/c", "a")]

    bad = rewrite_bundle(bundle, tmp_path / "links.bundle", add)
    with pytest.raises(BundleIntegrityError) as caught:
        verify_bundle(bad)
    text = problems_of(caught.value)
    assert "link target changed" in text
    assert "'images/c'" in text


def test_a_missing_member_is_named(bundle: Path, tmp_path: Path) -> None:
    bad = rewrite_bundle(
        bundle,
        tmp_path / "missing.bundle",
        lambda found: [m for m in found if m.info.name != "release.yaml"],
    )
    with pytest.raises(BundleIntegrityError) as caught:
        verify_bundle(bad)
    assert "missing member(s): release.yaml" in problems_of(caught.value)


def test_a_truncated_bundle_fails(bundle: Path, tmp_path: Path) -> None:
    data = bundle.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, len(data) - FOOTER_SIZE - 3, 10):
        bad = tmp_path / f"cut{cut}.bundle"
        bad.write_bytes(data[:cut])
        result = run_cli("bundle", "verify", str(bad))
        assert result.exit_code == ExitCode.BUNDLE_INTEGRITY, (cut, result.output)
        assert "truncated" in result.stderr


def test_an_extra_member_in_the_bootstrap_is_named(bundle: Path, tmp_path: Path) -> None:
    bad = rewrite_bundle(
        bundle,
        tmp_path / "bootstrap.bundle",
        lambda found: found,
        lambda found: [*found, file_member("wheelhouse/evil-1-py3-none-any.whl", b"x")],
    )
    with pytest.raises(BundleIntegrityError, match=r"bootstrap frame .* holds"):
        verify_bundle(bad)  # its size no longer matches the signed metadata

    def swap(found: list[RawMember]) -> list[RawMember]:
        return [
            file_member("wheelhouse/evil-1-py3-none-any.whl", m.data) for m in found[:1]
        ] + found[1:]

    bad = rewrite_bundle(bundle, tmp_path / "swapped.bundle", lambda found: found, swap)
    with pytest.raises(BundleIntegrityError) as caught:
        verify_bundle(bad)
    text = problems_of(caught.value)
    assert "extra member 'wheelhouse/evil-1-py3-none-any.whl'" in text
    assert "missing member(s): codequal-installer" in text


def test_a_changed_byte_outside_every_member_still_fails(bundle: Path, tmp_path: Path) -> None:
    """The bootstrap's end-of-archive blocks hold no member, yet they are signed bytes."""
    from installer.bundle.reader import locate_bundle, read_index

    index = read_index(locate_bundle(bundle))
    data = bytearray(bundle.read_bytes())
    data[8 + index.metadata.bootstrap_size - 10] ^= 0x01
    bad = tmp_path / "padding.bundle"
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="differ from its signed body hash"):
        verify_bundle(bad)


def test_a_flipped_byte_in_the_compressed_body_fails(bundle: Path, tmp_path: Path) -> None:
    data = bytearray(bundle.read_bytes())
    data[len(data) // 3] ^= 0xFF
    bad = tmp_path / "compressed.bundle"
    bad.write_bytes(bytes(data))
    result = run_cli("bundle", "verify", str(bad))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert "error:" in result.stderr or "member" in result.stderr


def test_a_swapped_signature_fails_with_the_key(
    bundle: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    other_key, _ = generate_key_pair(tmp_path / "other")
    from installer.bundle import signing

    forged = signing.sign(signing.load_private_key(other_key), b"anything")

    def swap(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.name == SIGNATURE_NAME:
                member.data = forged
                member.info.size = len(forged)
        return found

    bad = rewrite_bundle(bundle, tmp_path / "swapped.bundle", swap)
    result = run_cli("bundle", "verify", str(bad), "--key", str(keys[1]))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert "signature of metadata.json does not match" in result.stderr


def test_a_bundle_signed_by_another_key_names_both_keys(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    other_key, _ = generate_key_pair(tmp_path / "other")
    bundle = write_bundle(tmp_path / "other.bundle", members(), sign_key=other_key)
    with pytest.raises(BundleIntegrityError, match=r"signed by key sha256:.*not by --key"):
        verify_bundle(bundle, key=keys[1])


def test_an_unsigned_bundle_fails_when_a_key_is_required(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    bundle = write_bundle(tmp_path / "unsigned.bundle", members())
    assert verify_bundle(bundle).signature == "unsigned"
    with pytest.raises(BundleIntegrityError, match="not signed"):
        verify_bundle(bundle, key=keys[1])


def test_a_changed_checksum_list_breaks_the_aggregate_hash(bundle: Path, tmp_path: Path) -> None:
    def tamper(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.name == SUMS_NAME:
                member.data = member.data.replace(b"release.yaml", b"release.yml!")
        return found

    bad = rewrite_bundle(bundle, tmp_path / "sums.bundle", tamper)
    with pytest.raises(BundleIntegrityError, match="aggregate hash mismatch"):
        verify_bundle(bad)


def test_inspect_reads_only_the_index(bundle: Path, keys: tuple[Path, Path]) -> None:
    result = run_cli("bundle", "inspect", str(bundle), "--key", str(keys[1]))
    assert result.exit_code == 0, result.output
    assert "codequal 0.0.0-test" in result.stdout
    assert "linux/x86_64, Python 3.11" in result.stdout
    assert "signature valid" in result.stdout
    # Corrupt the images' data: inspect does not read it, verify does.
    data = bytearray(bundle.read_bytes())
    data[200] ^= 0xFF
    bundle.write_bytes(bytes(data))
    assert inspect_bundle(bundle).metadata.release_version == "0.0.0-test"
    with pytest.raises(BundleIntegrityError):
        verify_bundle(bundle)


def test_parts_verify_one_by_one_and_a_corrupt_part_is_named(tmp_path: Path) -> None:
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    header = write_bundle(parts_dir / "split.bundle", members(), part_size=1 << 20)
    part_files = sorted(p for p in parts_dir.iterdir() if re.search(r"\.part\d+$", p.name))
    assert len(part_files) >= 3
    assert all(p.stat().st_size == 1 << 20 for p in part_files[:-1])
    assert verify_bundle(header).verified
    assert verify_bundle(parts_dir / "split.bundle").verified  # the name finds its header

    data = bytearray(part_files[1].read_bytes())
    data[100] ^= 0x01
    part_files[1].write_bytes(bytes(data))
    result = run_cli("bundle", "verify", str(header))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert f"part 2 ({part_files[1].name}): SHA-256 mismatch" in result.stderr
    assert part_files[0].name not in result.stderr

    part_files[0].unlink()
    result = run_cli("bundle", "verify", str(header))
    assert f"part 1 ({part_files[0].name}): missing" in result.stderr


def test_unsafe_names_in_the_index_fail_verify(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "evil.bundle", [file_member("../outside", b"x"), *members()])
    with pytest.raises(BundleIntegrityError, match=r"'\.\.' in the path"):
        verify_bundle(bundle)


def test_device_members_are_extra_members(tmp_path: Path) -> None:
    from tests.bundle_helpers import special_member

    bundle = write_bundle(
        tmp_path / "dev.bundle", [*members(), special_member("null", tarfile.CHRTYPE)]
    )
    with pytest.raises(BundleIntegrityError, match="extra member 'null'"):
        verify_bundle(bundle)


def test_not_a_bundle(tmp_path: Path) -> None:
    other = tmp_path / "x.bundle"
    other.write_bytes(b"hello" * 100)
    result = run_cli("bundle", "verify", str(other))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert "footer" in result.stderr
    assert run_cli("bundle", "verify", str(tmp_path / "none.bundle")).exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("text", "size"),
    [("1M", 1 << 20), ("700MiB", 700 << 20), ("4g", 4 << 30), ("2097152", 2 << 20)],
)
def test_part_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12X", "-1M", "1k"])
def test_bad_part_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)
