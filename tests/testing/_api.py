"""A thin raw-HTTP client for FakeLago tests (the SDK itself is not used here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import aiohttp
import orjson


class Answer(NamedTuple):
    """One HTTP answer: status, decoded JSON body (None when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class Api:
    """Sends JSON requests to a FakeLago ``base_url`` with a bearer token."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str) -> None:
        self.session = session
        self.base_url = base_url
        self.api_key = api_key

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Any = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {api_key or self.api_key}", **(headers or {})}
        data = raw
        if body is not None:
            data = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.base_url + path, data=data, params=params, headers=sent
        ) as response:
            content = await response.read()
            return Answer(
                response.status, orjson.loads(content) if content else None, response.headers
            )

    async def get(self, path: str, **params: Any) -> Answer:
        return await self("GET", path, params={k: str(v) for k, v in params.items()} or None)

    async def post(self, path: str, body: Any = None) -> Answer:
        return await self("POST", path, body)

    async def delete(self, path: str) -> Answer:
        return await self("DELETE", path)


def event(n: int | str, sub: str = "sub_1", code: str = "storage", **extra: Any) -> dict[str, Any]:
    """An event input with transaction id ``tx-<n>``."""
    return {"transaction_id": f"tx-{n}", "code": code, "external_subscription_id": sub, **extra}
