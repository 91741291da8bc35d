"""``NOT_GIVEN``: the default of optional body arguments, told apart from ``None``.

An argument left at ``NOT_GIVEN`` is not sent at all; ``None`` is sent as JSON ``null``, which
is how an update clears a field::

    await lago.plans.update("premium", description=None)   # clears the description
    await lago.plans.update("premium", name="Premium")     # leaves the description alone
"""

from __future__ import annotations

from typing import Any, Final, Literal

__all__ = ["NOT_GIVEN", "NotGiven"]


class NotGiven:
    """The type of :data:`NOT_GIVEN` (falsy, with one instance)."""

    __slots__ = ()
    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> Any:
        return (NotGiven, ())


NOT_GIVEN: Final = NotGiven()
"""Left out of the request (as opposed to ``None``, sent as ``null``)."""
