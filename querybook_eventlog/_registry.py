"""Which logger Querybook uses: EVENT_LOGGER_NAME, the builtin loggers and plugins.

Mirrors upstream's ``lib.event_logger.all_event_loggers``: every builtin
logger is instantiated at import time (constructing never connects), plugin
loggers come from ``event_logger_plugin.ALL_PLUGIN_EVENT_LOGGERS``.
"""

from __future__ import annotations

import importlib
import os
from typing import List, Optional

from ._core import BaseEventLogger, ConsoleEventLogger, DBEventLogger, NullEventLogger

PLUGIN_MODULE = "event_logger_plugin"
CONFIG_ENV = "QUERYBOOK_CONFIG_PATH"


def _plugin_event_loggers() -> List[BaseEventLogger]:
    """ALL_PLUGIN_EVENT_LOGGERS of the plugin module; a missing module is none."""
    try:
        module = importlib.import_module(PLUGIN_MODULE)
    except ModuleNotFoundError as error:
        if error.name != PLUGIN_MODULE:
            raise  # the plugin exists but one of its own imports is missing
        return []
    return list(getattr(module, "ALL_PLUGIN_EVENT_LOGGERS", []))


def _config_yaml_paths() -> List[str]:
    """Querybook's config files, in the order Querybook reads them."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return [explicit]
    root = os.environ.get("QUERYBOOK_ROOT", os.getcwd())
    return [os.path.join(root, "querybook", "config", "querybook_config.yaml"),
            os.path.join(root, "querybook", "config", "querybook_default_config.yaml")]


def _name_from_yaml(path: str) -> Optional[str]:
    """EVENT_LOGGER_NAME from a flat Querybook config yaml, without needing PyYAML."""
    try:
        with open(path, encoding="utf-8") as config:
            lines = config.readlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip() == "EVENT_LOGGER_NAME" and not line[:1].isspace():
            value = value.split(" #", 1)[0].strip().strip("'\"")
            return value or None
    return None


def configured_logger_name() -> str:
    """EVENT_LOGGER_NAME: the environment first, then Querybook's config yaml, else "null"."""
    name = os.environ.get("EVENT_LOGGER_NAME")
    if name:
        return name
    for path in _config_yaml_paths():
        name = _name_from_yaml(path)
        if name:
            return name
    return "null"


ALL_EVENT_LOGGERS: List[BaseEventLogger] = [
    NullEventLogger(),
    ConsoleEventLogger(),
    DBEventLogger(),
] + _plugin_event_loggers()


def get_event_logger_class(name: str) -> BaseEventLogger:
    """The logger instance whose logger_name is `name` (upstream's name for it).

    Raises ValueError("Unknown event logger name <name>") when none matches.
    """
    for logger in ALL_EVENT_LOGGERS:
        if logger.logger_name == name:
            return logger
    raise ValueError(f"Unknown event logger name {name}")
