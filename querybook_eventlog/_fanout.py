"""Fan-out: EVENT_LOGGER_NAME naming several loggers ("db,kafka", or a list in
the yaml) gives one logger that hands each event to every member, so that a
deployment can write to the table and to Kafka side by side through a
cut-over.

A member's failure never reaches the others or the caller: it is logged
(package logger, at most once per member every FAILURE_LOG_INTERVAL_S, with
how many failed since) and counted in stats()["member_failures"].  Members
are any loggers of the registry, plugins included; each applies its own
allow/deny lists to log_api_request.  An event is validated and its
event_data built once, and the writer-backed builtin members (db, kafka)
share one encoding of it, in the caller: each queues its own copy of the
bytes and applies its own size limit.  A plugin member (or one overriding
the method) gets the arguments as given.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Sequence

from . import _settings
from ._core import BaseEventLogger

FAILURE_LOG_INTERVAL_S = 10.0


def parse_logger_names(name: Any) -> Optional[List[str]]:
    """The member names when `name` names several loggers ("db,kafka", a list,
    or a list as str() prints it, as a yaml list reaches the settings), else
    None.  ValueError for an empty member or the same member twice."""
    if isinstance(name, (list, tuple)):
        names = [str(member).strip() for member in name]
    elif isinstance(name, str) and ("," in name or name.strip().startswith("[")):
        text = name.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        names = [part.strip().strip("'\"").strip() for part in text.split(",")]
        if len(names) == 1:
            return None if names[0] == name else names
    else:
        return None
    if not names or any(not member for member in names):
        raise ValueError(f"EVENT_LOGGER_NAME {name!r} names an empty logger")
    if len(set(names)) != len(names):
        raise ValueError(f"EVENT_LOGGER_NAME {name!r} names a logger twice")
    return names


class FanOutEventLogger(BaseEventLogger):
    """Every event to each of `members`, in order; see the module doc."""

    def __init__(self, members: Sequence[BaseEventLogger]) -> None:
        if not members:
            raise ValueError("a fan-out logger needs at least one member")
        self._members = tuple(members)
        self._name = ",".join(member.logger_name for member in self._members)
        self._lock = threading.Lock()
        self._failures: Dict[str, int] = {member.logger_name: 0 for member in self._members}
        self._reported: Dict[str, "tuple[float, int]"] = {}

    @property
    def logger_name(self) -> str:
        return self._name

    @property
    def members(self) -> "tuple[BaseEventLogger, ...]":
        return self._members

    def _failed(self, member: BaseEventLogger, what: str, error: BaseException) -> None:
        name = member.logger_name
        now = time.monotonic()
        with self._lock:
            self._failures[name] = self._failures.get(name, 0) + 1
            count = self._failures[name]
            last_at, last_count = self._reported.get(name, (None, 0))
            report = last_at is None or now - last_at >= FAILURE_LOG_INTERVAL_S
            if report:
                self._reported[name] = (now, count)
        if report:
            _settings.package_logger().error(
                "fan-out member %r: %s failed (%s: %s); %d failure(s) since the last report; "
                "the other members are unaffected", name, what, type(error).__name__, error,
                count - last_count, exc_info=error)

    def log(self, uid: Optional[int], event_type: Any, event_data: Any,
            timestamp: Optional[float] = None) -> None:
        failures = self._fan_out_log(self._members, uid, event_type, event_data, timestamp)
        if failures is None:  # an invalid event: each member raises its own error
            self._log_each_member(uid, event_type, event_data, timestamp)
            return
        for member, error in failures:
            self._failed(member, "log()", error)

    def _log_each_member(self, uid: Optional[int], event_type: Any, event_data: Any,
                         timestamp: Optional[float]) -> None:
        """Each member's own log() (validating and encoding for itself)."""
        for member in self._members:
            try:
                member.log(uid=uid, event_type=event_type, event_data=event_data,
                           timestamp=timestamp)
            except Exception as error:
                self._failed(member, "log()", error)

    def log_api_request(self, uid: Optional[int], route: str, method: str, params: Any) -> None:
        for member, error in self._fan_out_log_api_request(self._members, uid, route, method,
                                                            params):
            self._failed(member, "log_api_request()", error)

    def log_websocket_event(self, uid: Optional[int], route: str, args: Any, kwargs: Any) -> None:
        for member, error in self._fan_out_log_websocket_event(self._members, uid, route, args,
                                                                kwargs):
            self._failed(member, "log_websocket_event()", error)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Flush every member that can (each for at most `timeout`); True when all did."""
        done = True
        for member in self._members:
            flush = getattr(member, "flush", None)
            if callable(flush):
                try:
                    done = bool(flush(timeout=timeout)) and done
                except Exception as error:
                    self._failed(member, "flush()", error)
                    done = False
        return done

    def close(self, timeout: Optional[float] = None) -> None:
        for member in self._members:
            close = getattr(member, "close", None)
            if callable(close):
                try:
                    close(timeout=timeout)
                except Exception as error:
                    self._failed(member, "close()", error)

    def stats(self) -> Dict[str, Any]:
        """{"members": {name: member.stats() or None}, "member_failures": {name: n}}."""
        members: Dict[str, Any] = {}
        for member in self._members:
            stats = getattr(member, "stats", None)
            try:
                members[member.logger_name] = stats() if callable(stats) else None
            except Exception as error:
                members[member.logger_name] = None
                self._failed(member, "stats()", error)
        with self._lock:
            failures = dict(self._failures)
        return {"members": members, "member_failures": failures}

    def __repr__(self) -> str:
        return f"<FanOutEventLogger {self._name}: {list(self._members)!r}>"
