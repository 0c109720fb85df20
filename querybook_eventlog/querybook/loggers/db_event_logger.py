"""Upstream's ``lib/event_logger/loggers/db_event_logger.py``.

DBEventLogger() writes to Querybook's ``event_log`` table through a writer
thread, from Querybook's DATABASE_CONN; see the README for the marker table
it needs (``querybook_eventlog.querybook.schema``).
"""

from datetime import datetime  # noqa: F401  (upstream's module namespace)

from ... import BaseEventLogger, DBEventLogger  # noqa: F401
from .._lazy import module_getattr
from ... import _settings

_settings.use_querybook()

__getattr__ = module_getattr(__name__)
