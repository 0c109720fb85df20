"""Upstream's ``lib/event_logger/base_event_logger.py``: the plugin contract."""

from abc import ABC, abstractmethod  # noqa: F401  (upstream's module namespace)
from typing import TypedDict

from .. import BaseEventLogger, MAX_STR_PARAM_LENGTH  # noqa: F401  (re-exported)
from ._lazy import module_getattr
from .. import _settings

_settings.use_querybook()


class ApiFilterRule(TypedDict):
    """One rule of the API allow/deny lists.

    type: 'prefix' | 'exact'; route: the API route; method: 'GET' | 'POST' |
    'PUT' | 'DELETE' | '*' (any).
    """

    type: str
    route: str
    method: str


__getattr__ = module_getattr(__name__)
