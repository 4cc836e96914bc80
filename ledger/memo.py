"""A property worked out once per object: `functools.cached_property` without its lock.

Python 3.11's cached_property takes one lock, shared by every instance of the class, on each first
access; on the per-event hot path (an event's leaf, a certificate's digest) that costs more than
the value. These values are pure functions of a frozen object: two threads computing one at the
same moment get the same value, so no lock is needed (Python 3.12 dropped it too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class once(Generic[T]):
    """Decorate a method of no arguments: its result is kept in the instance's __dict__ (which
    frozen dataclasses have), so later reads are plain attribute reads."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> once[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> once[T] | T:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.name] = value
        return value
