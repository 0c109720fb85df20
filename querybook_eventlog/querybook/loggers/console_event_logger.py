"""Upstream's ``lib/event_logger/loggers/console_event_logger.py``.

ConsoleEventLogger() writes upstream's exact line through ``LOG`` (Querybook's
``get_logger`` for this file): stderr and the LOG_LOCATION file.
"""

from datetime import datetime  # noqa: F401  (upstream's module namespace)

from ... import BaseEventLogger, ConsoleEventLogger  # noqa: F401
from ... import _settings
from .._lazy import module_getattr

_settings.use_querybook()

COLOR_YELLOW = "\x1b[33;20m"
COLOR_RESET = "\x1b[0m"

__getattr__ = module_getattr(__name__, {"LOG": _settings.console_logger})
