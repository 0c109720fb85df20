"""Upstream's ``lib/event_logger/loggers/null_event_logger.py``."""

from ... import BaseEventLogger, NullEventLogger  # noqa: F401
from .._lazy import module_getattr
from ... import _settings

_settings.use_querybook()

__getattr__ = module_getattr(__name__)
