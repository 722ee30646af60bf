"""The HTTP face of the Bot API: routes calls and file downloads, injects faults, records requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.emulators.telegram_api_errors import (
    ApiError,
    bad_request,
    chat_migrated,
    forbidden,
    not_found,
    too_many_requests,
)
from tests.emulators.telegram_backend import Answer, Handler
from tests.emulators.telegram_faults import Fault, FaultKind, FaultPlan
from tests.emulators.telegram_files import FileStore
from tests.emulators.telegram_params import Params, read_params
from tests.emulators.telegram_records import Journal, RequestRecord
from tests.emulators.telegram_world import BotAccount, World

_BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)


class BotApiHttp:
    """`/bot<token>/<method>` calls and `/file/bot<token>/<path>` downloads, as api.telegram.org serves."""

    def __init__(
        self,
        *,
        world: World,
        files: FileStore,
        journal: Journal,
        faults: FaultPlan,
        handlers: dict[str, Handler],
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        accept_any_token: bool,
    ) -> None:
        self._world = world
        self._files = files
        self._journal = journal
        self.faults = faults
        self._handlers = {name.lower(): handler for name, handler in handlers.items()}
        self._clock = clock
        self._wall_clock = wall_clock
        self.accept_any_token = accept_any_token
        self.stopping: asyncio.Event | None = None
        """Set while stopping: held calls are released (and dropped)."""

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            return self._download(path.removeprefix("/file/bot"))
        if path.startswith("/bot"):
            token, _, method = path.removeprefix("/bot").partition("/")
            if token and method and "/" not in method:
                return await self._call(request, token, method)
        return _error_response(not_found())

    def _download(self, rest: str) -> web.Response:
        token, _, file_path = rest.partition("/")
        bot = self._world.bots.get(token)
        stored = self._files.by_path(bot.id, file_path) if bot else None
        if stored is None:
            return _error_response(not_found())
        return web.Response(body=stored.content, content_type="application/octet-stream")

    async def _call(self, request: web.Request, token: str, method: str) -> web.StreamResponse:
        try:
            bot = self._world.authenticate(token, self.accept_any_token)
        except ApiError as error:
            self._journal.requests.append(
                self._request_record(method, None, None, {}, error.status, error.description)
            )
            return _error_response(error)
        try:
            params = await read_params(request)
        except ApiError as error:
            self._journal.requests.append(
                self._request_record(method, bot.id, None, {}, error.status, error.description)
            )
            return _error_response(error)
        chat_id = _chat_id_of(params)
        record = self._request_record(method, bot.id, chat_id, params.raw)
        self._journal.requests.append(record)
        await self._journal.notify()
        fault = self.faults.take(method, chat_id)
        if fault is not None:
            record.fault = str(fault.kind)
            return await self._inject(fault, request, record, bot, method, params)
        return await self._answer(record, bot, method, params)

    def _request_record(
        self,
        method: str,
        bot_id: int | None,
        chat_id: int | str | None,
        params: dict[str, Any],
        status: int | None = None,
        description: str = "",
    ) -> RequestRecord:
        return RequestRecord(
            method=method,
            bot_id=bot_id,
            chat_id=chat_id,
            params=params,
            received_at=self._clock(),
            received_at_wall=self._wall_clock(),
            status=status,
            description=description,
        )

    async def _answer(
        self, record: RequestRecord, bot: BotAccount, method: str, params: Params
    ) -> web.Response:
        handler = self._handlers.get(method.lower())
        try:
            if handler is None:
                raise not_found()
            outcome = await handler(bot, params)
        except ApiError as error:
            return await self._refuse(record, error)
        answer = outcome if isinstance(outcome, Answer) else Answer(outcome)
        record.status = 200
        await self._journal.notify()
        body: dict[str, Any] = {"ok": True, "result": answer.result}
        if answer.description:
            body["description"] = answer.description
        return web.json_response(body)

    async def _refuse(self, record: RequestRecord, error: ApiError) -> web.Response:
        if error.status == 429:
            self._journal.count_429 += 1
        record.status, record.description = error.status, error.description
        await self._journal.notify()
        return _error_response(error)

    async def _inject(
        self,
        fault: Fault,
        request: web.Request,
        record: RequestRecord,
        bot: BotAccount,
        method: str,
        params: Params,
    ) -> web.StreamResponse:
        kind = fault.kind
        if kind is FaultKind.SERVER_ERROR:
            record.status = fault.status
            await self._journal.notify()
            if fault.status == 502:
                return web.Response(status=502, text=_BAD_GATEWAY_PAGE, content_type="text/html")
            return _error_response(ApiError(fault.status, fault.description or "Internal Server Error"))
        if kind is FaultKind.TIMEOUT_BEFORE:
            await self._journal.notify()
            await self._hold(fault.delay)
            return await self._drop(request)
        if kind is FaultKind.RESET:
            await self._journal.notify()
            return await self._drop(request)
        if kind in (FaultKind.TIMEOUT_AFTER, FaultKind.SLOW):
            response = await self._answer(record, bot, method, params)
            await self._hold(fault.delay if kind is FaultKind.TIMEOUT_AFTER else (fault.delay or 1.0))
            return response
        return await self._refuse(record, self._fault_error(fault, record.chat_id))

    @staticmethod
    def _fault_error(fault: Fault, chat_id: int | str | None) -> ApiError:
        kind = fault.kind
        if kind is FaultKind.TOO_MANY_REQUESTS:
            return too_many_requests(fault.retry_after)
        if kind is FaultKind.BLOCKED:
            return forbidden("bot was blocked by the user")
        if kind is FaultKind.CHAT_NOT_FOUND:
            return bad_request("chat not found")
        if kind is FaultKind.MIGRATED:
            target = fault.migrate_to_chat_id
            if target is None:
                target = int(f"-100{abs(int(chat_id or 0))}")
            return chat_migrated(target)
        description = fault.description or "Bad Request: wrong parameters"
        if not description.startswith("Bad Request"):
            description = f"Bad Request: {description}"
        return ApiError(400, description)

    async def _hold(self, seconds: float | None) -> None:
        """Keep a call waiting until `seconds` pass, the client gives up (cancelling it) or we stop."""
        stopping = self.stopping
        if stopping is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the connection without an answer."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        await asyncio.sleep(0)
        raise asyncio.CancelledError


def _chat_id_of(params: Params) -> int | str | None:
    try:
        return params.optional_chat_id()
    except ApiError:
        return None


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)
