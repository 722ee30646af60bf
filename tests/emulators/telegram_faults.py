"""Faults injected into Bot API calls on demand, matched in the order they were added."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    SERVER_ERROR = "server_error"
    """500 Internal Server Error (JSON), or with status=502 nginx's HTML Bad Gateway page; nothing sent."""
    TIMEOUT_BEFORE = "timeout_before"
    """Hold the call unprocessed until the client gives up (or `delay` passes), then drop it."""
    TIMEOUT_AFTER = "timeout_after"
    """Process the call (the message is sent), then hold the answer until the client gives up."""
    RESET = "reset"
    """Close the connection without an answer; nothing sent."""
    SLOW = "slow"
    """Process the call, then answer after `delay` seconds."""
    TOO_MANY_REQUESTS = "too_many_requests"
    """429 with `retry_after`, for one chat when `chat_id` is set, else for any matching call."""
    BLOCKED = "blocked"
    """403 Forbidden: bot was blocked by the user."""
    CHAT_NOT_FOUND = "chat_not_found"
    """400 Bad Request: chat not found."""
    MIGRATED = "migrated"
    """400 group chat was upgraded to a supergroup chat, with parameters.migrate_to_chat_id."""
    BAD_REQUEST = "bad_request"
    """400 with `description`."""


@dataclass
class Fault:
    """One injected fault. `method` None matches every call addressed to a chat (never getUpdates)."""

    kind: FaultKind | str
    method: str | None = None
    chat_id: int | str | None = None
    times: int | None = 1
    """How many matching calls it hits; None hits every one until removed."""
    retry_after: int = 5
    delay: float | None = None
    status: int = 500
    description: str = ""
    migrate_to_chat_id: int | None = None

    def __post_init__(self) -> None:
        self.kind = FaultKind(self.kind)

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is None:
            if chat_id is None:
                return False
        elif self.method.lower() != method.lower():
            return False
        return self.chat_id is None or str(self.chat_id) == str(chat_id)


@dataclass(frozen=True)
class FiredFault:
    fault: Fault
    method: str
    chat_id: int | str | None


@dataclass
class FaultPlan:
    """Faults waiting to fire, and a log of those that did."""

    pending: list[Fault] = field(default_factory=list)
    fired: list[FiredFault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.pending.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        if fault in self.pending:
            self.pending.remove(fault)

    def clear(self) -> None:
        self.pending.clear()

    def take(self, method: str, chat_id: int | str | None) -> Fault | None:
        """The first fault matching this call, with one of its `times` used up."""
        for fault in self.pending:
            if fault.matches(method, chat_id):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.pending.remove(fault)
                self.fired.append(FiredFault(fault, method, chat_id))
                return fault
        return None
