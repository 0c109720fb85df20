"""EventLogger: the facade Querybook's request code calls (upstream's
``lib.event_logger.EventLogger``).

It wraps the configured logger, fills ``uid`` from Flask-Login's current
user, and never lets event logging break a request: every exception is
reported through the application's logger (Querybook's own inside Querybook)
and swallowed, which is exactly upstream's contract.  The logger is looked up
on first use, not at construction, so ``event_logger = EventLogger()`` at
import time touches nothing.

Who the user is (upstream's rules, except where noted):
- ``log_api_request`` logs only for an authenticated user;
- ``log`` and ``log_websocket_event`` use the authenticated user's id, and
  ``None`` (a NULL uid) for an anonymous user or outside a request.  Upstream
  raises for an anonymous Flask-Login user (``AnonymousUserMixin`` has no
  ``id``), losing the event, and uses 0 outside a request, which Querybook's
  foreign key on ``event_log.uid`` rejects.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from . import _settings
from ._core import BaseEventLogger
from ._registry import get_event_logger_class

# uid_getter result meaning "no authenticated user": API requests are not logged.
ANONYMOUS = None


def flask_login_uid() -> Optional[int]:
    """The id of Flask-Login's authenticated current user, else None."""
    try:
        from flask_login import current_user  # type: ignore
    except ImportError:
        return ANONYMOUS
    if not current_user:  # outside a request context the proxy stands for None
        return ANONYMOUS
    if not getattr(current_user, "is_authenticated", False):
        return ANONYMOUS
    return current_user.id


class EventLogger:
    """Querybook's facade: ``event_logger.log_api_request(route, method, params)`` etc.

    ``logger``: the logger to use; default, the one EVENT_LOGGER_NAME names,
    looked up on first use.  ``uid_getter``: returns the authenticated user's
    id or None; default, Flask-Login's current user.
    """

    def __init__(self, logger: Optional[BaseEventLogger] = None,
                 uid_getter: Optional[Callable[[], Optional[int]]] = None) -> None:
        self._logger = logger
        self.uid_getter = uid_getter or flask_login_uid

    @property
    def logger(self) -> BaseEventLogger:
        """The wrapped logger (resolved from EVENT_LOGGER_NAME on first use)."""
        if self._logger is None:
            self._logger = get_event_logger_class(_settings.configured_logger_name())
        return self._logger

    @logger.setter
    def logger(self, logger: BaseEventLogger) -> None:
        self._logger = logger

    @staticmethod
    def _report(error: BaseException) -> None:
        _settings.package_logger().error(error, exc_info=True)

    def log(self, event_type: Any, event_data: Any, timestamp: Optional[float] = None) -> None:
        """Log one event for the current user (uid None when anonymous); never raises."""
        try:
            self.logger.log(uid=self.uid_getter(), event_type=event_type, event_data=event_data,
                            timestamp=timestamp)
        except Exception as error:
            self._report(error)

    def log_api_request(self, route: str, method: str, params: Dict[str, Any]) -> None:
        """Log an API call of an authenticated user (subject to the logger's
        allow/deny lists); never raises."""
        try:
            uid = self.uid_getter()
            if uid is not ANONYMOUS:
                self.logger.log_api_request(uid=uid, route=route, method=method, params=params)
        except Exception as error:
            self._report(error)

    def log_websocket_event(self, route: str, args: List[Any], kwargs: Dict[str, Any]) -> None:
        """Log a socket.io event (route = namespace + "/" + event name); never raises."""
        try:
            self.logger.log_websocket_event(uid=self.uid_getter(), route=route, args=args,
                                            kwargs=kwargs)
        except Exception as error:
            self._report(error)
