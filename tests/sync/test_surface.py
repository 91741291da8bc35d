"""The generated surface: every async method has a blocking twin with the same signature."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import lago_async
import lago_sync
from lago_async import AsyncLago
from lago_async._ingest import EventIngestor as AsyncEventIngestor
from lago_async.resources import AsyncCustomers, AsyncEvents
from lago_sync import EventIngestor, Lago, Pager
from lago_sync.resources import Customers, Events

RESOURCES = [(AsyncEvents, Events, "events"), (AsyncCustomers, Customers, "customers")]
RENAMED = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
# Names in annotations that map to their blocking twins.
TWINS = {
    "AsyncLago": "Lago",
    "AsyncPager": "Pager",
    "AsyncIterator": "Iterator",
    "AsyncEvents": "Events",
    "AsyncCustomers": "Customers",
}


def public_methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name not in RENAMED:
            continue
        if inspect.isfunction(value):
            yield name, value


def expected(signature: inspect.Signature) -> inspect.Signature:
    """The async signature as its twin should read: async names mapped to their twins."""

    def twin(annotation: Any) -> Any:
        if not isinstance(annotation, str):
            return annotation
        return re.sub(r"\b\w+\b", lambda m: TWINS.get(m.group(0), m.group(0)), annotation)

    parameters = [p.replace(annotation=twin(p.annotation)) for p in signature.parameters.values()]
    return signature.replace(
        parameters=parameters, return_annotation=twin(signature.return_annotation)
    )


def test_the_resource_modules_have_their_twins() -> None:
    assert set(lago_sync.resources.__all__) == {"Events", "Customers"}
    async_annotations: dict[str, Any] = {}
    for klass in reversed(AsyncLago.__mro__):
        async_annotations.update(getattr(klass, "__annotations__", {}))
    for async_cls, sync_cls, attribute in RESOURCES:
        assert async_annotations[attribute] == async_cls.__name__
        assert Lago.__annotations__[attribute] == sync_cls.__name__


@pytest.mark.parametrize(
    ("async_cls", "sync_cls", "name"),
    [
        (async_cls, sync_cls, name)
        for async_cls, sync_cls, _ in RESOURCES
        for name, _ in public_methods(async_cls)
    ],
)
def test_every_resource_method_has_a_twin_with_the_same_signature(
    async_cls: type, sync_cls: type, name: str
) -> None:
    async_method = getattr(async_cls, name)
    sync_method = getattr(sync_cls, name, None)
    assert sync_method is not None, f"{sync_cls.__name__}.{name} is missing"
    assert not inspect.iscoroutinefunction(sync_method)
    assert inspect.signature(sync_method) == expected(inspect.signature(async_method))
    assert sync_method.__doc__, f"{sync_cls.__name__}.{name} has no docstring"


def test_the_twins_return_twins() -> None:
    assert inspect.signature(Events.list).return_annotation == "Pager[Event]"
    assert inspect.signature(Customers.past_usage).return_annotation == "Pager[CustomerUsage]"
    assert inspect.signature(Events.ingestor).return_annotation == "EventIngestor"
    assert inspect.signature(Events.create).return_annotation == "Event"


def test_the_client_takes_the_async_client_parameters() -> None:
    assert inspect.signature(Lago.__init__) == inspect.signature(AsyncLago.__init__)
    assert inspect.signature(Lago.with_options) == expected(
        inspect.signature(AsyncLago.with_options)
    )
    for name in ("base_url", "timeout", "max_retries", "batch_limit"):
        assert isinstance(inspect.getattr_static(Lago, name), property), name


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"),
    [(AsyncLago, Lago), (AsyncEventIngestor, EventIngestor), (lago_async.AsyncPager, Pager)],
)
def test_the_other_classes_have_every_method(async_cls: type, sync_cls: type) -> None:
    for name, method in public_methods(async_cls):
        twin = RENAMED.get(name, name)
        sync_method = getattr(sync_cls, twin, None)
        assert sync_method is not None, f"{sync_cls.__name__}.{twin} is missing"
        assert not inspect.iscoroutinefunction(sync_method)
        if name not in RENAMED and name != "__init__":
            assert inspect.signature(sync_method) == expected(inspect.signature(method)), name
    if hasattr(async_cls, "__aiter__"):
        assert hasattr(sync_cls, "__iter__")


def test_the_ingestor_exposes_its_outcomes() -> None:
    for name in ("stats", "rejected", "failed", "batch_size", "max_queue"):
        assert isinstance(inspect.getattr_static(EventIngestor, name), property), name
    assert inspect.signature(EventIngestor.send) == inspect.signature(AsyncEventIngestor.send)


def test_all_mirrors_the_async_package() -> None:
    renamed = {"AsyncLago": "Lago", "AsyncPager": "Pager"}
    mirrored = [renamed.get(name, name) for name in lago_async.__all__]
    assert lago_sync.__all__[: len(mirrored)] == mirrored
    assert lago_sync.__all__[len(mirrored) :] == ["SyncInAsyncContextError"]
    for name in lago_sync.__all__:
        assert getattr(lago_sync, name) is not None


def test_models_and_errors_are_the_very_same_classes() -> None:
    wrapped = {"AsyncLago", "AsyncPager", "EventIngestor"}
    for name in lago_async.__all__:
        if name not in wrapped:
            assert getattr(lago_sync, name) is getattr(lago_async, name), name
    assert lago_sync.NotFoundError is lago_async.NotFoundError
    assert lago_sync.Customer is lago_async.Customer
    assert lago_sync.Page is lago_async.Page
    assert issubclass(lago_sync.SyncInAsyncContextError, lago_async.LagoError)


def test_public_names_have_docstrings() -> None:
    for cls in (Lago, Events, Customers, Pager, EventIngestor):
        assert cls.__doc__, cls
        for name, value in vars(cls).items():
            if name.startswith("_"):
                continue
            target = value.fget if isinstance(value, property) else value
            if callable(target):
                assert target.__doc__, f"{cls.__name__}.{name}"


def test_docstrings_speak_of_blocking_calls() -> None:
    assert "await" not in (Events.ingestor.__doc__ or "")
    assert "``with lago.events.ingestor() as ingest:``" in (Events.ingestor.__doc__ or "")
    assert "async with" not in (Lago.__doc__ or "")
    assert "with Lago(" in (Lago.__doc__ or "")
