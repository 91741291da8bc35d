"""Auto-paging over Lago's ``page``/``per_page`` lists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs

from . import types as _models
from ._convert import structure
from ._errors import LagoError

__all__ = ["AsyncPager", "Page"]

T = TypeVar("T")


@attrs.frozen
class Page(Generic[T]):
    """One page of a list: its items and the server's pagination ``meta``."""

    items: list[T]
    meta: _models.PaginationMeta


class AsyncPager(Generic[T]):
    """An async iterator over every item of a list, fetching pages as it goes.

    ``async for item in pager`` walks all items across pages; ``async for page in
    pager.pages()`` yields :class:`Page` objects with their ``meta``. Nothing is fetched until
    iteration starts, and each iteration starts again from the first page asked for. A server
    whose ``next_page`` does not move forward raises :class:`~lago_async.LagoError` instead of
    looping forever.
    """

    __slots__ = ("_fetch", "_key", "_list_type", "_start")

    def __init__(
        self,
        fetch: Callable[[int], Awaitable[Any]],
        *,
        key: str,
        item_type: type[T],
        page: int | None = None,
    ) -> None:
        self._fetch = fetch
        self._key = key
        self._list_type: Any = list[item_type]  # type: ignore[valid-type]
        self._start = page or 1

    def __repr__(self) -> str:
        return f"AsyncPager(key={self._key!r}, start_page={self._start})"

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Yield each page in turn, starting from the page given to the list call (1)."""
        number: int | None = self._start
        seen: set[int] = set()
        while number is not None:
            seen.add(number)
            data = await self._fetch(number)
            items: list[T] = structure(data.get(self._key) or [], self._list_type)
            meta = structure(
                data.get("meta") or _single_page_meta(len(items)), _models.PaginationMeta
            )
            yield Page(items=items, meta=meta)
            following = meta.next_page
            if following is None or not items:
                return
            if following in seen or following <= number:
                raise LagoError(
                    f"pagination of {self._key!r} did not advance: page {number} "
                    f"points to next_page {following}"
                )
            number = following

    async def _iterate(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def to_list(self) -> list[T]:
        """Fetch every page and return all items in one list."""
        return [item async for item in self._iterate()]

    async def first_page(self) -> Page[T]:
        """Fetch only the first page."""
        async for page in self.pages():
            return page
        raise AssertionError("pages() always yields at least once")  # pragma: no cover


def _single_page_meta(count: int) -> dict[str, Any]:
    return {
        "current_page": 1,
        "next_page": None,
        "prev_page": None,
        "total_pages": 1,
        "total_count": count,
    }
