"""Upstream's ``lib/event_logger/__init__.py``: ``EventLogger`` and the
``event_logger`` instance (which looks its logger up on first use).

Like every mirror module of this subpackage, importing it switches the
package to Querybook's settings (see ``querybook_eventlog.querybook``).
"""

from .. import _settings
from .._facade import EventLogger
from .._registry import get_event_logger_class  # noqa: F401  (upstream's module namespace)
from ._lazy import module_getattr

_settings.use_querybook()

event_logger = EventLogger()

__all__ = [
    "EventLogger",
    "event_logger",
    "LOG",
    "current_user",
    "EventType",
    "QuerybookSettings",
    "get_event_logger_class",
    "get_logger",
]


def _current_user():
    from flask_login import current_user  # type: ignore

    return current_user


def _querybook_settings():
    from env import QuerybookSettings  # type: ignore

    return QuerybookSettings


# The names upstream's module imports, resolved from Querybook on access.
__getattr__ = module_getattr(__name__, {
    "LOG": _settings.package_logger,
    "current_user": _current_user,
    "QuerybookSettings": _querybook_settings,
})
