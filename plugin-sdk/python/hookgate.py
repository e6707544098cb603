"""Hookgate's plugin SDK for Python.

A plugin is a module ``app.py`` that defines ``transform(event, config)``:
it gets the platform's :class:`Event` and the integration's :class:`Config`
and returns an :class:`Outcome` (deliver requests, or drop the event), or
raises :class:`InvalidEvent` / :class:`Failed` (neither is retried; any
other exception counts as ``Failed`` with its message).

``hookgate plugin build`` turns the folder into a WebAssembly component
(with ``componentize-py``); ``python -m unittest`` runs its tests natively
with :func:`run`, no component needed.

JSON bodies made with :meth:`Request.json` are compact with keys sorted,
as the Rust and JavaScript SDKs write them: the same plugin in any of the
three languages sends the same bytes.
"""

from __future__ import annotations

import json as _json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = [
    "Config",
    "Event",
    "Failed",
    "InvalidEvent",
    "Outcome",
    "Request",
    "dumps",
    "log",
    "run",
]


class InvalidEvent(Exception):
    """The event is not what the plugin expects (bad shape, missing field)."""


class Failed(Exception):
    """Anything else went wrong (bad configuration, a bug)."""


def dumps(value: Any) -> str:
    """JSON as every Hookgate SDK writes it: compact, keys sorted, UTF-8."""
    return _json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Event:
    """The event the platform posted, as Hookgate accepted it."""

    id: str
    hook_type: str
    integration: str
    occurred_at_ms: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON; :class:`InvalidEvent` when it is not."""
        try:
            return _json.loads(self.body)
        except ValueError as error:
            raise InvalidEvent(f"event body is not the expected JSON: {error}") from None

    @staticmethod
    def from_json(
        hook_type: str,
        value: Any,
        *,
        id: str = "evt_test",
        integration: str = "int_test",
        occurred_at_ms: int = 1_700_000_000_000,
    ) -> "Event":
        """An event for tests, with ``value`` as its JSON body."""
        return Event(
            id=id,
            hook_type=hook_type,
            integration=integration,
            occurred_at_ms=occurred_at_ms,
            content_type="application/json",
            body=dumps(value).encode(),
        )


@dataclass
class Request:
    """One outgoing request; the host adds signature, auth and user-agent."""

    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @staticmethod
    def json(value: Any) -> "Request":
        """A request whose body is ``value`` as JSON (see :func:`dumps`)."""
        return Request(body=dumps(value).encode(), content_type="application/json")

    def header(self, name: str, value: str) -> "Request":
        """Adds an extra header (the host refuses the names it owns)."""
        self.headers.append((name, value))
        return self

    def header_value(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (any case)."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def body_json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.body)


@dataclass
class Outcome:
    """What to do with the event: send ``requests``, or drop it for ``reason``."""

    requests: list[Request] = field(default_factory=list)
    dropped: Optional[str] = None

    @staticmethod
    def deliver(*requests: Request) -> "Outcome":
        return Outcome(requests=list(requests))

    @staticmethod
    def drop(reason: str) -> "Outcome":
        return Outcome(dropped=reason)


class Config:
    """The integration's configuration (the string map set on it)."""

    def __init__(self, lookup: Callable[[str], Optional[str]]):
        self._lookup = lookup

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        value = self._lookup(key)
        return default if value is None else value


def _stderr_log(level: str, message: str) -> None:
    print(f"[{level}] {message}", file=sys.stderr)


# The component's glue points this at the host's `log`.
_log: Callable[[str, str], None] = _stderr_log


def log(level: str, message: str) -> None:
    """A line in the gateway's log: ``level`` is trace, debug, info, warn or error."""
    _log(level, message)


def run(transform: Callable[[Event, Config], Outcome], event: Event, config: Optional[dict] = None) -> Outcome:
    """Runs ``transform`` natively, as the gateway would, for tests."""
    values = dict(config or {})
    outcome = transform(event, Config(values.get))
    if not isinstance(outcome, Outcome):
        raise Failed(f"transform returned {type(outcome).__name__}, not an Outcome")
    return outcome
