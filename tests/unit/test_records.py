"""``Record``: the immutable value base of the start-up path behaves as a frozen dataclass."""

from __future__ import annotations

from typing import ClassVar

import pytest

from installer.records import FrozenRecordError, Record


class Point(Record):
    x: int
    y: int = 0
    label: str | None = None
    unit: ClassVar[str] = "px"  # not a field

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


class Other(Record):
    x: int
    y: int = 0
    label: str | None = None


def test_fields_positional_keyword_and_defaults() -> None:
    assert Point._fields == ("x", "y", "label")
    point = Point(3, label="a")
    assert (point.x, point.y, point.label) == (3, 0, "a")
    assert Point(x=1, y=2) == Point(1, 2)
    assert point.norm1 == 3
    assert Point.unit == "px"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Point(), "missing field 'x'"),  # noqa: PLW0108
        (lambda: Point(1, 2, "a", 4), "takes 3 fields, 4 were given"),
        (lambda: Point(1, x=2), "got field 'x' twice"),
        (lambda: Point(1, z=2), "has no field 'z'"),
    ],
)
def test_wrong_constructor_calls_are_refused(call: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()  # type: ignore[operator]


def test_values_cannot_change() -> None:
    point = Point(1)
    with pytest.raises(FrozenRecordError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenRecordError):
        del point.x  # type: ignore[misc]
    assert isinstance(FrozenRecordError("x"), AttributeError)
    assert point.x == 1


def test_equality_hash_and_repr_follow_type_and_values() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2) != Other(1, 2)  # same values, another type
    assert Point(1, 2) != (1, 2, None)
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2
    assert repr(Point(1, label="a")) == "Point(x=1, y=0, label='a')"


def test_replace_and_asdict() -> None:
    point = Point(1, 2)
    moved = point._replace(y=5)
    assert (moved, point) == (Point(1, 5), Point(1, 2))
    assert moved._asdict() == {"x": 1, "y": 5, "label": None}
    with pytest.raises(TypeError, match="has no field 'z'"):
        point._replace(z=1)


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="field b needs a default"):

        class Broken(Record):
            a: int = 0
            b: int
