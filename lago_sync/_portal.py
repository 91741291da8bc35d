"""The runtime under the generated blocking facade: one portal thread per client.

Hand-written; the generated modules (``_client.py``, ``resources/``, ``_pagination.py``,
``_ingest.py``) build on the base classes defined here.

How a blocking call runs:

* A :class:`~lago_sync.Lago` owns a :class:`_Runtime`, shared with its ``with_options``
  copies. On first use the runtime starts a *live* portal (:class:`_Live`): an anyio
  :class:`~anyio.from_thread.BlockingPortal` running an asyncio loop in its own daemon
  thread, and the :class:`~lago_async.AsyncLago` created inside that loop (its aiohttp
  session is created there too, on the first request).
* A call creates the async method's coroutine in the calling thread and hands it to the
  portal's loop (:meth:`_Live.run`): one ``call_soon_threadsafe`` and one lock, which costs
  less than :meth:`BlockingPortal.call` (that one spawns a task group child, a cancel scope
  and a ``concurrent.futures.Future`` per call). The portal itself starts and stops the loop.
* Closing the client closes the session inside the loop, stops the portal and joins its
  thread. A client closed, or collected, or alive at interpreter exit is cleaned up the same
  way (:func:`weakref.finalize`). Using it again after :meth:`close` starts a new portal, as
  :class:`~lago_async.AsyncLago` opens a new session.
* After ``os.fork()`` the child drops its inherited portal without touching it (the parent's
  loop, thread and sockets are not the child's) and builds a new one on first use.
* A call from a thread that runs an event loop raises :class:`SyncInAsyncContextError` at
  once: blocking there would stall that loop, or deadlock it if it is the portal's. The one
  exception is a Jupyter notebook: ipykernel runs an event loop on the main thread, and a
  cell is expected to block until its result is there, so calls from the kernel's main
  thread go through (the portal thread does the I/O; the kernel's loop only waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import weakref
from asyncio.events import _get_running_loop
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from lago_async import AsyncPager, LagoError, LagoValidationError
from lago_async._raw import CAPTURE, RawResponse, capture_responses

if TYPE_CHECKING:
    from lago_async import Page

__all__ = [
    "ClientBase",
    "ObjectBase",
    "PagerBase",
    "ResourceBase",
    "SyncInAsyncContextError",
    "reject_loop_bound",
]

log = logging.getLogger("lago_sync")

T = TypeVar("T")
C = TypeVar("C")  # the async client type
O = TypeVar("O")  # the wrapped async object type  # noqa: E741
ClientT = TypeVar("ClientT", bound="ClientBase[Any]")

_THREAD_NAME = "lago_sync-portal"


class SyncInAsyncContextError(LagoError, RuntimeError):
    """A blocking ``lago_sync`` call was made from a thread that runs an event loop.

    Blocking there would stall every task of that loop (or deadlock it). In a coroutine or an
    async web handler, use :class:`lago_async.AsyncLago` and ``await`` the same methods; or
    run the blocking call in a worker thread (``await asyncio.to_thread(...)``). Jupyter
    notebook cells are the exception: there, blocking calls are expected and allowed.
    """


def _in_loop_error() -> SyncInAsyncContextError:
    return SyncInAsyncContextError(
        "lago_sync was called from a running event loop, where a blocking call would stall "
        "the loop (or deadlock it). In async code use lago_async instead: "
        "`async with lago_async.AsyncLago(...) as lago: await lago.<resource>.<method>(...)`; "
        "or run the blocking call in a worker thread with `await asyncio.to_thread(...)`."
    )


def _in_loop(portal_loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Whether a blocking call from this thread must be refused (see the module's notes).

    Always from the portal's own loop (it would wait for itself); from another running loop
    unless that is a Jupyter kernel running a cell.
    """
    running = _get_running_loop()
    if running is None:
        return False
    return running is portal_loop or not _in_notebook_cell()


def _in_notebook_cell() -> bool:
    """Whether this is the main thread of a Jupyter kernel (ipykernel), running a cell.

    The kernel's event loop serves the notebook's messages; a cell blocking it while a
    lago_sync call runs in the portal thread is how every blocking library behaves there.
    """
    if "ipykernel" not in sys.modules or threading.current_thread() is not threading.main_thread():
        return False
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def reject_loop_bound(field: str, value: object) -> None:
    """Refuse an argument tied to another event loop (an aiohttp session, say)."""
    if value is not None:
        raise LagoValidationError(
            field,
            "lago_sync runs its own event loop in its portal thread, and aiohttp objects "
            "cannot cross event loops: leave it out (the client creates its own session in "
            "that loop), or use lago_async.AsyncLago to pass your own",
        )


def _discard(awaitable: object) -> None:
    """Close a coroutine that will not run, so Python does not warn it was never awaited."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


# -- one started portal -------------------------------------------------------------------------

_RUNNING, _STOPPING, _STOPPED, _ORPHANED = "running", "stopping", "stopped", "orphaned"


class _Call(Generic[T]):
    """One awaitable handed to the portal's loop: its outcome and the lock its caller waits on."""

    __slots__ = ("awaitable", "capture", "error", "lock", "result", "task")

    def __init__(self, awaitable: Awaitable[T]) -> None:
        self.awaitable: Awaitable[T] | None = awaitable
        self.task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        # the caller's capture_responses() block, if any, carried into the portal's task
        self.capture = CAPTURE.get()
        lock = threading.Lock()
        lock.acquire()
        self.lock = lock

    async def drive(self, live: _Live) -> None:
        """Run in the loop as a task: await the call, keep its outcome, release the caller."""
        self.task = asyncio.current_task()
        awaitable, self.awaitable = self.awaitable, None
        if self.capture is not None:
            CAPTURE.set(self.capture)  # this task's own context: the caller's block records
        try:
            assert awaitable is not None
            if live.state is not _RUNNING:  # queued just as the portal began to stop
                _discard(awaitable)
                raise live._unusable()
            self.result: T = await awaitable
        except BaseException as exc:  # handed to the caller, cancellation included
            self.error = exc
        finally:
            self.lock.release()

    def cancel(self) -> None:
        """Run in the loop: cancel the task of a call whose caller stopped waiting."""
        if self.task is not None:
            self.task.cancel()


class _Live:
    """A started portal thread: its event loop and the async client created in it."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.pid = os.getpid()
        self.state = _RUNNING
        self._state_lock = threading.Lock()
        self._calls: set[_Call[Any]] = set()
        self._cm = start_blocking_portal()
        portal: BlockingPortal = self._cm.__enter__()
        try:
            self.portal = portal
            self.loop: asyncio.AbstractEventLoop = portal.call(asyncio.get_running_loop)
            self.thread_id: int = portal.call(_name_portal_thread)
            self.client: Any = portal.call(factory)  # created inside the portal's loop
        except BaseException:
            self._cm.__exit__(*sys.exc_info())
            raise
        self._call_soon_threadsafe = self.loop.call_soon_threadsafe
        self._create_task = self.loop.create_task

    def __repr__(self) -> str:
        return f"<lago_sync portal {self.state} pid={self.pid}>"

    # -- calls ------------------------------------------------------------------------------

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` in the portal's loop and block until it is done."""
        if _in_loop(self.loop):
            _discard(awaitable)
            raise _in_loop_error()
        if self.state is not _RUNNING:
            _discard(awaitable)
            raise self._unusable()
        call = _Call(awaitable)
        calls = self._calls
        calls.add(call)
        driver = call.drive(self)
        try:
            try:
                self._call_soon_threadsafe(self._create_task, driver)
            except RuntimeError:  # the loop was closed meanwhile
                driver.close()
                _discard(awaitable)
                raise self._unusable() from None
            try:
                call.lock.acquire()
            except BaseException:  # KeyboardInterrupt while waiting: stop the call too
                with contextlib.suppress(RuntimeError):
                    self._call_soon_threadsafe(call.cancel)
                raise
        finally:
            calls.discard(call)
        error = call.error
        if error is None:
            return call.result
        call.error = None
        if isinstance(error, asyncio.CancelledError):
            raise LagoError(
                "the call was cancelled: its lago_sync client was closed meanwhile"
            ) from None
        raise error

    def call(self, function: Callable[[], T]) -> T:
        """Call a plain function in the portal's loop (for methods that touch loop state)."""
        return self.run(_call_in_loop(function))

    def check(self) -> None:
        """Raise unless a thread-safe method of a wrapped object may be called from here."""
        if _in_loop(self.loop):
            raise _in_loop_error()
        if self.state is not _RUNNING:
            raise self._unusable()

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator from the calling thread, one portal call per item."""
        finished = False
        try:
            while True:
                try:
                    item = self.run(iterator.__anext__())
                except StopAsyncIteration:
                    finished = True
                    return
                yield item
        finally:
            aclose = getattr(iterator, "aclose", None)
            if not finished and aclose is not None:
                # Closed early (break, an exception, garbage collection): let the async
                # generator run its cleanup in the loop. Failing that (the client is closed,
                # or this runs inside a loop), the loop's asyncgen hooks finalize it.
                with contextlib.suppress(LagoError):
                    self.run(aclose())

    def _unusable(self) -> LagoError:
        if self.state is _ORPHANED:
            return LagoError(
                "this lago_sync object was created before os.fork() and belongs to the parent "
                "process; create it again from the client in this process"
            )
        return LagoError(
            "this lago_sync object's client was closed; create it again from the client "
            "(a closed client starts a new portal on its next call)"
        )

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        """Close the async client in the loop, stop the portal and join its thread."""
        with self._state_lock:
            if self.state is not _RUNNING:
                return
            self.state = _STOPPING
        if threading.get_ident() == self.thread_id:
            # Collected (or closed) from inside the portal's own loop: it cannot wait for
            # itself, so it stops in the background; the daemon thread then ends.
            _ABANDONED.append(self)
            self.loop.create_task(self._stop_in_loop())
            return
        try:
            self.portal.call(self._shutdown)
        finally:
            try:
                self._cm.__exit__(None, None, None)  # stops the portal, joins the thread
            finally:
                self.state = _STOPPED
                self._release_stranded()

    async def _stop_in_loop(self) -> None:
        try:
            await self._shutdown()
        finally:
            self.state = _STOPPED
            await self.portal.stop()

    async def _shutdown(self) -> None:
        """In the loop: end the calls still running, then close the client's session.

        In that order, so that no call still under way opens a new session after the close.
        New calls are refused already (the state is no longer running).
        """
        current = asyncio.current_task()
        for _ in range(10):
            tasks = {
                call.task
                for call in list(self._calls)
                if call.task is not None and call.task is not current and not call.task.done()
            }
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=1)
        try:
            await self.client.aclose()
        except Exception:
            log.warning("lago_sync: closing the client's session failed", exc_info=True)

    def _release_stranded(self) -> None:
        """Wake callers whose call was queued on the loop as it stopped and never started."""
        for call in list(self._calls):
            if call.task is None and call.lock.locked():
                call.error = self._unusable()
                _discard(call.awaitable)
                with contextlib.suppress(RuntimeError):
                    call.lock.release()

    def orphan(self) -> None:
        """In a forked child: forget this portal without touching it (it is the parent's)."""
        self.state = _ORPHANED
        self._state_lock = threading.Lock()
        self._calls = set()


def _name_portal_thread() -> int:
    thread = threading.current_thread()
    thread.name = _THREAD_NAME
    return thread.ident or threading.get_ident()


async def _call_in_loop(function: Callable[[], T]) -> T:
    return function()


# Portals that must stay referenced: inherited across fork (dropping them would run their
# finalizers on the parent's loop and sockets) or stopping themselves in the background.
_ORPHANS: list[_Live] = []
_ABANDONED: list[_Live] = []


class _Runtime(Generic[C]):
    """The lazily started portal of a client and its ``with_options`` copies."""

    __slots__ = ("__weakref__", "_factory", "_finalizer", "_lock", "live")

    def __init__(self, factory: Callable[[], C]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.live: _Live | None = None
        _RUNTIMES.add(self)

    def ensure_live(self) -> _Live:
        """The current portal, started on first use (once, whichever thread gets here first)."""
        with self._lock:
            live = self.live
            if live is not None and live.pid != os.getpid():  # forked without os.fork()
                self._forget()
                live = None
            if live is None:
                live = _Live(self._factory)
                self.live = live
                self._finalizer = weakref.finalize(self, live.stop)
            return live

    def close(self) -> None:
        """Stop the current portal, if any (the next call starts a new one)."""
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            self.live = None
        if finalizer is not None:
            finalizer()  # live.stop(), once

    def _forget(self) -> None:
        """Drop the portal inherited from the parent process, without touching it."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        live, self.live = self.live, None
        if live is not None:
            live.orphan()
            _ORPHANS.append(live)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._forget()


_RUNTIMES: weakref.WeakSet[_Runtime[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for runtime in list(_RUNTIMES):
        runtime._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Bound(Generic[C]):
    """A sync client's view of the current portal: the portal and its own async client."""

    __slots__ = ("client", "live", "runtime")

    def __init__(self, runtime: _Runtime[Any], live: _Live, client: C) -> None:
        self.runtime = runtime
        self.live = live
        self.client = client


# -- bases of the generated classes ------------------------------------------------------------


class ClientBase(Generic[C]):
    """Base of the generated :class:`~lago_sync.Lago`: the portal plumbing and lifecycle."""

    _runtime: _Runtime[C]
    _recipes: tuple[Callable[[Any], Any], ...]
    _proto: C
    _b: _Bound[C] | None

    def _setup(self, factory: Callable[[], C]) -> None:
        """Check the settings at once (by building a client here) and defer the portal."""
        self._proto = factory()  # never sends anything: it answers configuration reads
        self._runtime = _Runtime(factory)
        self._recipes = ()
        self._b = None
        self._bind_resources()

    def _bind_resources(self) -> None:
        raise NotImplementedError  # generated

    def _derive(self: ClientT, recipe: Callable[[C], C]) -> ClientT:
        """A client sharing this one's portal and pool, its async twin built by ``recipe``."""
        new = object.__new__(type(self))
        new._proto = recipe(self._proto)  # checks the options at once
        new._runtime = self._runtime
        new._recipes = (*self._recipes, recipe)
        new._b = None
        new._bind_resources()
        return new

    def _bound(self) -> _Bound[C]:
        """The portal and async client to call now, starting the portal on first use."""
        if _in_loop():
            raise _in_loop_error()
        bound = self._b
        if bound is None or bound.live is not self._runtime.live:
            bound = self._rebind()
        return bound

    def _rebind(self) -> _Bound[C]:
        live = self._runtime.ensure_live()
        client = live.client
        for recipe in self._recipes:
            client = recipe(client)
        bound = _Bound(self._runtime, live, client)
        self._b = bound
        return bound

    def close(self) -> None:
        """Close the connection pool and stop the portal thread (shared with copies).

        Safe to call more than once, and from async code. A call made afterwards starts a new
        portal and pool, as :meth:`lago_async.AsyncLago.aclose` lets the next call open a new
        session.
        """
        self._runtime.close()

    def __enter__(self: ClientT) -> ClientT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return _sync_repr(repr(self._proto))

    @property
    def with_raw_response(self) -> Any:
        """The same namespaces and calls, each returning a :class:`~lago_async.RawResponse`.

        ``raw = lago.with_raw_response.customers.get("acme")`` gives ``raw.status``,
        ``raw.headers``, ``raw.content`` and ``raw.parse()`` (the :class:`Customer`). To keep
        typed results and still see the answers, use :func:`lago_sync.capture_responses`.
        """
        return _RawResponses(self)


class _RawResponses:
    """``lago.with_raw_response`` of the blocking client: each call returns its answer."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def __repr__(self) -> str:
        return f"<with_raw_response of {self._target!r}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._target, name)
        if isinstance(value, ResourceBase):
            return _RawResponses(value)
        if callable(value):
            return _raw_caller(value)
        raise AttributeError(f"with_raw_response has no call named {name!r}")


def _raw_caller(method: Callable[..., Any]) -> Callable[..., RawResponse]:
    def call(*args: Any, **kwargs: Any) -> RawResponse:
        with capture_responses(limit=1) as captured:
            result = method(*args, **kwargs)
            if isinstance(result, PagerBase):
                result.first_page()  # type: ignore[attr-defined]
        raw = captured.last
        raw._parsed = result
        return raw

    call.__name__ = getattr(method, "__name__", "call")
    call.__doc__ = method.__doc__
    return call


class ResourceBase(Generic[C]):
    """Base of the generated resource namespaces (``lago.events``, ``lago.customers``...)."""

    __slots__ = ("_lago",)

    def __init__(self, lago: ClientBase[C]) -> None:
        self._lago = lago

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class ObjectBase(Generic[O]):
    """Base of the generated wrappers of objects the async methods return (ingestor...).

    A wrapper belongs to the portal that was current when it was made: after the client is
    closed, or in a forked child, using it raises :class:`~lago_async.LagoError`.
    """

    __slots__ = ("_keep", "_live", "_obj")

    def __init__(self, obj: O, bound: _Bound[Any]) -> None:
        self._obj = obj
        self._live = bound.live
        self._keep = bound.runtime  # the client's portal lives as long as this object

    def __repr__(self) -> str:
        return _sync_repr(repr(self._obj))


class PagerBase(ObjectBase[AsyncPager[T]], Generic[T]):
    """Base of the generated :class:`~lago_sync.Pager`: iteration over items page by page.

    Iterating an :class:`~lago_async.AsyncPager` item by item would cost one portal call per
    item; this walks :meth:`pages` instead, one portal call per page.
    """

    __slots__ = ()

    def pages(self) -> Iterator[Page[T]]:
        raise NotImplementedError  # generated

    def __iter__(self) -> Iterator[T]:
        """Iterate over every item, fetching pages as it goes (each iteration starts over)."""
        for page in self.pages():
            yield from page.items


def _sync_repr(text: str) -> str:
    """``AsyncLago(...)`` -> ``Lago(...)``, ``<AsyncEvents>`` -> ``<Events>``."""
    if text.startswith("<Async"):
        return "<" + text[6:]
    if text.startswith("Async"):
        return text[5:]
    return text
