"""EventLogger: the facade Querybook's request code calls (upstream's
``lib.event_logger.EventLogger``).

It wraps the configured logger, fills ``uid`` from the current user, and
never lets event logging break a request: every exception is logged and
swallowed here (bad input included), which is exactly upstream's contract.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Union

from ._core import BaseEventLogger
from ._event_type import EventType
from ._registry import configured_logger_name, get_event_logger_class

LOG = logging.getLogger("querybook_eventlog")


def flask_login_uid() -> int:
    """The id of Flask-Login's current user, or 0 when there is none (upstream's rule)."""
    try:
        from flask_login import current_user  # type: ignore
    except ImportError:
        return 0
    try:
        return int(current_user.id) if current_user and current_user.is_authenticated else 0
    except Exception:  # outside a request context
        return 0


class EventLogger:
    """Querybook's facade: ``event_logger.log_api_request(route, method, params)`` etc.

    ``logger`` defaults to the one named by EVENT_LOGGER_NAME (see
    configured_logger_name); ``uid_getter`` defaults to Flask-Login's
    current user (0 when there is none).
    """

    def __init__(self, logger: Optional[BaseEventLogger] = None,
                 uid_getter: Optional[Callable[[], int]] = None) -> None:
        self.logger = logger if logger is not None else get_event_logger_class(
            configured_logger_name())
        self.uid_getter = uid_getter or flask_login_uid

    def _uid(self) -> int:
        try:
            return self.uid_getter()
        except Exception:
            LOG.exception("querybook_eventlog: uid_getter failed; logging uid 0")
            return 0

    def log(self, event_type: Union[EventType, str], event_data: Optional[Dict[str, Any]],
            timestamp: Optional[float] = None) -> None:
        """Log one event for the current user; never raises."""
        try:
            self.logger.log(uid=self._uid(), event_type=event_type, event_data=event_data,
                            timestamp=timestamp)
        except Exception:
            LOG.exception("querybook_eventlog: failed to log event")

    def log_api_request(self, route: str, method: str, params: Dict[str, Any]) -> None:
        """Log an API call (subject to the logger's allow/deny lists); never raises."""
        try:
            self.logger.log_api_request(uid=self._uid(), route=route, method=method,
                                        params=params)
        except Exception:
            LOG.exception("querybook_eventlog: failed to log API request")

    def log_websocket_event(self, route: str, args: List[Any], kwargs: Dict[str, Any]) -> None:
        """Log a socket.io event (route = namespace + "/" + event name); never raises."""
        try:
            self.logger.log_websocket_event(uid=self._uid(), route=route, args=args,
                                            kwargs=kwargs)
        except Exception:
            LOG.exception("querybook_eventlog: failed to log websocket event")
