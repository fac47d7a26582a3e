"""Hardened extraction: malicious bundles are rejected before anything is written outside
the destination, and a failed extraction leaves the destination as it was found."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from installer.bundle import open_bundle
from installer.bundle.extract import UnsafeMemberError, check_link_target, check_member_name
from installer.errors import BundleIntegrityError, ExitCode
from tests.bundle_helpers import (
    RawMember,
    file_member,
    link_member,
    special_member,
    write_bundle,
)
from tests.unit.cli_helpers import run_cli


def good() -> list[RawMember]:
    return [
        file_member("codequal-installer", b"#!/bin/sh\n", mode=0o4755),
        file_member("images/a/layer.tar", b"layer" * 1000),
        link_member("images/b/layer.tar", "../a/layer.tar"),
        file_member("release.yaml", b"{}\n"),
    ]


def test_a_good_bundle_extracts_with_its_links_and_safe_modes(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "good.bundle", good())
    opened = open_bundle(bundle, tmp_path / "out")
    root = opened.root
    assert (root / "images/b/layer.tar").read_bytes() == b"layer" * 1000
    assert (root / "images/b/layer.tar").is_symlink()
    assert (root / "codequal-installer").stat().st_mode & 0o7777 == 0o755  # no setuid


def test_extraction_without_images_leaves_them_out(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "good.bundle", good())
    opened = open_bundle(bundle, tmp_path / "out", extract_images=False)
    assert not (opened.root / "images").exists()
    assert (opened.root / "release.yaml").is_file()


@pytest.mark.parametrize(
    ("evil", "message"),
    [
        (file_member("../escaped.txt", b"x"), "'..' in the path"),
        (file_member("images/../../escaped.txt", b"x"), "'..' in the path"),
        (file_member("{outside}/escaped.txt", b"x"), "absolute path"),
        (link_member("images/evil", "../../escaped.txt"), "escapes the destination"),
        (link_member("images/evil", "{outside}/escaped.txt"), "absolute or empty target"),
        (link_member("evil", ".."), "escapes the destination"),
    ],
)
def test_listed_escapes_are_rejected_before_writing(
    tmp_path: Path, evil: RawMember, message: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    evil.info.name = evil.info.name.format(outside=outside)
    evil.info.linkname = evil.info.linkname.format(outside=outside)
    # The index lists the evil member: only the extractor's own checks stand in the way.
    bundle = write_bundle(tmp_path / "evil.bundle", [*good(), evil])
    destination = tmp_path / "work" / "dest"
    with pytest.raises(UnsafeMemberError, match=message):
        open_bundle(bundle, destination)
    assert not destination.exists()
    assert not (outside / "escaped.txt").exists()
    assert not (tmp_path / "work" / "escaped.txt").exists()
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("evil", "kind"),
    [
        (link_member("images/hard", "/etc/passwd", tarfile.LNKTYPE), "hard link"),
        (link_member("images/hard", "../../outside/x", tarfile.LNKTYPE), "hard link"),
        (special_member("images/null", tarfile.CHRTYPE), "character device"),
        (special_member("images/disk", tarfile.BLKTYPE), "block device"),
        (special_member("images/pipe", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_links_devices_and_fifos_are_rejected(tmp_path: Path, evil: RawMember, kind: str) -> None:
    # Put the evil member first: nothing may have been written when it is rejected.
    bundle = write_bundle(tmp_path / "evil.bundle", [evil, *good()])
    destination = tmp_path / "dest"
    destination.mkdir()
    with pytest.raises(BundleIntegrityError, match=f"a {kind} is never part of a bundle"):
        open_bundle(bundle, destination)
    assert list(destination.iterdir()) == []


def test_an_unlisted_traversal_in_the_stream_is_rejected(tmp_path: Path) -> None:
    # The stream holds a member the index does not name (an attacker's addition).
    bundle = write_bundle(
        tmp_path / "evil.bundle",
        [*good(), file_member("../../escaped.txt", b"x")],
        listed=good(),
    )
    destination = tmp_path / "a" / "b" / "dest"
    with pytest.raises(BundleIntegrityError, match=r"extra member '\.\./\.\./escaped\.txt'"):
        open_bundle(bundle, destination)
    assert not (tmp_path / "a" / "escaped.txt").exists()
    assert not destination.exists()


def test_writing_through_a_link_is_rejected(tmp_path: Path) -> None:
    members = [
        link_member("images/dir", "../templates"),
        file_member("images/dir/x", b"through the link"),
        file_member("templates/keep", b"k"),
    ]
    bundle = write_bundle(tmp_path / "evil.bundle", members)
    with pytest.raises(UnsafeMemberError, match="is a link"):
        open_bundle(bundle, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_a_member_written_twice_is_rejected(tmp_path: Path) -> None:
    members = [*good(), file_member("release.yaml", b"{}\n")]
    bundle = write_bundle(tmp_path / "twice.bundle", members)
    with pytest.raises(BundleIntegrityError, match="appears more than once"):
        open_bundle(bundle, tmp_path / "dest")


def test_a_changed_member_is_removed_again(tmp_path: Path) -> None:
    listed = good()
    stream = good()
    stream[1] = file_member("images/a/layer.tar", b"LAYER" * 1000)
    bundle = write_bundle(tmp_path / "changed.bundle", stream, listed=listed)
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / ".keep").mkdir()
    with pytest.raises(BundleIntegrityError, match="SHA-256 mismatch"):
        open_bundle(bundle, destination / ".keep")
    assert list((destination / ".keep").iterdir()) == []


def test_extract_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "good.bundle", good())
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("mine")
    result = run_cli("bundle", "extract", str(bundle), str(tmp_path / "busy"))
    assert result.exit_code == ExitCode.PREREQUISITES
    assert (tmp_path / "busy" / "file").read_text() == "mine"


def test_the_command_exits_4_on_an_escape(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "evil.bundle", [*good(), file_member("../x", b"x")])
    result = run_cli("bundle", "extract", str(bundle), str(tmp_path / "dest"))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert "'..' in the path" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "..", "a/..", "x\0y"])
def test_unsafe_names(name: str) -> None:
    with pytest.raises(UnsafeMemberError):
        check_member_name(name)


@pytest.mark.parametrize(
    ("name", "target", "resolved"),
    [("a/b", "c", "a/c"), ("a/b", "../c", "c"), ("a/b/c", "../../d/e", "d/e")],
)
def test_link_targets_inside(name: str, target: str, resolved: str) -> None:
    assert check_link_target(name, target) == resolved


@pytest.mark.parametrize(("name", "target"), [("a", "../b"), ("a/b", "../../c"), ("a", "/etc")])
def test_link_targets_outside(name: str, target: str) -> None:
    with pytest.raises(UnsafeMemberError):
        check_link_target(name, target)
