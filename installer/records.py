"""``Record``: immutable values with named fields, for the modules on the start-up path.

A frozen dataclass generates and compiles its methods when its class is created (about a
millisecond each on the machines ``check`` is measured on), and ``typing.NamedTuple``
still compiles a constructor per class. ``check`` defines some twenty such value
classes before it measures anything, against a start-up budget of a few milliseconds, so
they derive from this base instead: one shared constructor, equality, hash and repr,
nothing compiled per class. Type checkers see them as frozen dataclasses
(``dataclass_transform``), so constructor calls are checked as before.

Fields are the class's own annotations (not ``ClassVar``), in order; a class attribute
of the same name is the field's default and is shared, so defaults must be immutable.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self, dataclass_transform
else:  # only type checkers read it; importing typing_extensions costs start-up time

    def dataclass_transform(**_options: object) -> object:
        return lambda cls: cls


class FrozenRecordError(AttributeError):
    """An attempt to change a field of a :class:`Record`."""


@dataclass_transform(frozen_default=True)
class Record:
    """Base of immutable value classes (see the module text)."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        annotations = inspect.get_annotations(cls)  # this class's own, as strings
        fields = tuple(
            name
            for name, annotation in annotations.items()
            if not str(annotation).startswith(("ClassVar", "typing.ClassVar"))
        )
        cls._fields = fields
        cls._defaults = {name: cls.__dict__[name] for name in fields if name in cls.__dict__}
        required_after_default = [
            name
            for index, name in enumerate(fields)
            if name not in cls._defaults and any(f in cls._defaults for f in fields[:index])
        ]
        if required_after_default:
            raise TypeError(f"{cls.__name__}: field {required_after_default[0]} needs a default")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        name = type(self).__name__
        if len(args) > len(fields):
            raise TypeError(f"{name} takes {len(fields)} fields, {len(args)} were given")
        values = dict(zip(fields, args, strict=False))
        for key, value in kwargs.items():
            if key not in fields:
                raise TypeError(f"{name} has no field {key!r}")
            if key in values:
                raise TypeError(f"{name} got field {key!r} twice")
            values[key] = value
        for field in fields[len(args) :]:
            if field not in values:
                if field not in self._defaults:
                    raise TypeError(f"{name} is missing field {field!r}")
                values[field] = self._defaults[field]
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenRecordError(f"{type(self).__name__}.{name} cannot be changed")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"{type(self).__name__}.{name} cannot be deleted")

    def _values(self) -> tuple[Any, ...]:
        return tuple(self.__dict__[f] for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Record):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={self.__dict__[f]!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"

    def _replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (as ``dataclasses.replace`` makes)."""
        return type(self)(**{**self._asdict(), **changes})

    def _asdict(self) -> dict[str, Any]:
        """The fields and their values, in order (not recursive)."""
        return {f: self.__dict__[f] for f in self._fields}
