"""python-telegram-bot's HTTP layer on aiohttp: the Bot API calls of `telegram.Bot` at a fraction of the CPU.

PTB's default `HTTPXRequest` spends most of a send in httpx and httpcore (its pool looks at every idle
connection on every request); at the paid broadcast rate that, not Telegram, limits the sender. This
`BaseRequest` keeps PTB's contract: PTB still builds the request, maps HTTP statuses to its errors and
parses the answer; failures come out as `TimedOut` or `NetworkError` chained to aiohttp's exception,
which `adapters.telegram.errors.classify` reads to tell "never sent" from "may have arrived".
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import aiohttp
import certifi
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


class PoolTimeoutError(TimeoutError):
    """Every connection stayed busy for the whole pool timeout: the request was never sent."""


class AiohttpRequest(BaseRequest):
    """Bot API calls over one keep-alive aiohttp session of at most `connection_pool_size` connections."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 64,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        media_write_timeout: float | None = 20.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._media_write_timeout = media_write_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        # aiohttp counts the wait for a pooled connection in its connect timeout; PTB's pool timeout is
        # a separate, usually shorter, limit, so the pool's slots are counted here.
        self._free_connections = asyncio.Semaphore(connection_pool_size)

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (in the running event loop, which aiohttp binds it to)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                limit_per_host=0,
                ssl=ssl.create_default_context(cafile=certifi.where()),
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}, trust_env=False
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        body: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        has_files = False
        if request_data is not None:
            files = request_data.multipart_data
            has_files = bool(files)
            if has_files:
                body = _multipart(request_data.json_parameters, files)
            else:
                # One JSON document (the Bot API's own format) costs far less to encode than a form.
                body = json.dumps(request_data.parameters).encode()
                headers = _JSON
        timeout = _timeout(
            _given(read_timeout, self._read_timeout),
            _given(write_timeout, self._media_write_timeout if has_files else self._write_timeout),
            _given(connect_timeout, self._connect_timeout),
        )
        await self._take_connection(_given(pool_timeout, self._pool_timeout))
        try:
            async with session.request(method, url, data=body, headers=headers, timeout=timeout) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as error:
            raise TimedOut("Connect timeout: the request was not sent to Telegram") from error
        except TimeoutError as error:  # the answer was late: the request may have arrived
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
        finally:
            self._free_connections.release()

    async def _take_connection(self, pool_timeout: float | None) -> None:
        if not self._free_connections.locked():
            await self._free_connections.acquire()
            return
        try:
            async with asyncio.timeout(pool_timeout):
                await self._free_connections.acquire()
        except TimeoutError:
            raise TimedOut(
                "Pool timeout: all connections are busy; the request was not sent to Telegram"
            ) from PoolTimeoutError()


def _timeout(read: float | None, write: float | None, connect: float | None) -> aiohttp.ClientTimeout:
    # aiohttp has no write timeout: the whole call is bounded by connect + write + read instead.
    phases = (read, write, connect)
    total = None if None in phases else sum(phase for phase in phases if phase is not None)
    return aiohttp.ClientTimeout(total=total, connect=connect, sock_connect=connect, sock_read=read)


def _given(value: Any, default: float | None) -> float | None:
    """A timeout PTB passes through, or this request's default where PTB says DEFAULT_NONE."""
    if isinstance(value, type(BaseRequest.DEFAULT_NONE)):
        return default
    return None if value is None else float(value)


def _multipart(fields: dict[str, str], files: dict[str, Any]) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        data = content if isinstance(content, bytes) else content.read()
        form.add_field(name, data, filename=filename, content_type=mimetype)
    return form
