"""The save stream's shared layers end up at their first path whichever copy Docker wrote
the data to, so bundle create is reproducible; only members behind a forward link wait on
disk."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import pytest

from installer.bundle.create import _Relinker
from installer.errors import InstallerError


class RecordingSink:
    def __init__(self) -> None:
        self.out: list[tuple[str, str, bytes | str, int]] = []

    def file(self, name: str, size: int, source: Any, mode: int) -> None:
        data = source.read(size)
        assert len(data) == size
        self.out.append(("file", name, data, mode))

    def link(self, name: str, target: str) -> None:
        self.out.append(("link", name, target, 0))


def _stream(groups: dict[str, tuple[str, ...]], data_at: dict[str, str]) -> list[Any]:
    """Members in path order: each group's data at ``data_at[group]``, links elsewhere."""
    members: list[tuple[str, Any]] = []
    for group, paths in groups.items():
        for path in paths:
            members.append((f"{path}/VERSION", b"1.0"))
            if path == data_at[group]:
                members.append((f"{path}/layer.tar", f"data of {group}".encode() * 1000))
            else:
                members.append((f"{path}/layer.tar", ("link", f"../{data_at[group]}/layer.tar")))
    members.append(("ff/layer.tar", b"unshared" * 5000))
    return sorted(members, key=lambda m: m[0])


def _run(members: list[Any], staging: Path) -> tuple[list[Any], bool]:
    sink = RecordingSink()
    with _Relinker(sink, staging) as relinker:  # type: ignore[arg-type]
        for name, content in members:
            if isinstance(content, tuple):
                relinker.link(name, content[1])
            else:
                relinker.file(name, len(content), io.BytesIO(content), 0o644)
        staged = relinker._spool is not None
    assert not list(staging.iterdir())  # the spool is gone afterwards
    return sink.out, staged


def test_every_direction_docker_may_pick_gives_the_same_output(tmp_path: Path) -> None:
    groups = {"x": ("aa", "cc", "ee"), "y": ("bb", "dd")}  # interleaved groups
    outputs = []
    choices = list(itertools.product(groups["x"], groups["y"]))
    for x_at, y_at in choices:
        out, staged = _run(_stream(groups, {"x": x_at, "y": y_at}), tmp_path)
        outputs.append(out)
        # Data already at the first path of each group: nothing waits on disk.
        assert staged is not (x_at == "aa" and y_at == "bb")
    assert all(out == outputs[0] for out in outputs)
    names = [(kind, name) for kind, name, _, _ in outputs[0]]
    assert names == sorted(names, key=lambda n: n[1])  # path order kept
    by_name = {name: content for _, name, content, _ in outputs[0]}
    assert by_name["aa/layer.tar"] == b"data of x" * 1000
    assert by_name["cc/layer.tar"] == "../aa/layer.tar"
    assert by_name["ee/layer.tar"] == "../aa/layer.tar"
    assert by_name["bb/layer.tar"] == b"data of y" * 1000
    assert by_name["dd/layer.tar"] == "../bb/layer.tar"


def test_a_forward_link_whose_data_never_comes_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InstallerError, match=r"dangling link aa/layer\.tar"):
        _run([("aa/layer.tar", ("link", "../bb/layer.tar"))], tmp_path)


def test_a_link_to_a_link_is_an_error(tmp_path: Path) -> None:
    members = [
        ("aa/layer.tar", b"x"),
        ("bb/layer.tar", ("link", "../aa/layer.tar")),
        ("cc/layer.tar", ("link", "../bb/layer.tar")),
    ]
    with pytest.raises(InstallerError, match="not to data"):
        _run(members, tmp_path)
