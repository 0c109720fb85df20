"""Where the package takes its settings from: standalone, or Querybook's own.

Standalone (the default), settings come from the environment and Querybook's
config yaml found through ``$QUERYBOOK_CONFIG_PATH`` / ``$QUERYBOOK_ROOT``.
Inside a Querybook process -- once ``querybook_eventlog.querybook`` has been
imported, which the adoption edit of ``lib/event_logger/`` does -- they come
from Querybook itself: ``env.QuerybookSettings`` (EVENT_LOGGER_NAME and
DATABASE_CONN from env or yaml, exactly as Querybook resolves them),
``const.event_log.EventType`` and ``lib.logger.get_logger``.

Nothing here runs at import: each function reads its source when called, so
importing the package never touches the environment, a file or a database.
The C core calls ``database_conn`` (the DB logger's default URL, on first
use), ``warn`` (one-off operator warnings such as a missing marker table) and
``console_logger`` (where the console logger's upstream-format lines go).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, List, Optional

# Querybook's lib.logger format, used for the standalone loggers too.
LOG_FORMAT = '[%(asctime)s] - %(name)s - %(levelname)-8s"%(message)s"'
LOG_DATE_FORMAT = "%Y-%m-%d %a %H:%M:%S"

PLUGIN_MODULE = "event_logger_plugin"
CONFIG_ENV = "QUERYBOOK_CONFIG_PATH"

# Values of EVENT_LOGGER_NAME that mean "the null logger" (YAML null, empty).
NULL_NAMES = (None, "", "~", "null", "None")


class _Context:
    """Which settings are in force; switched by querybook_eventlog.querybook."""

    querybook = False


context = _Context()


def use_querybook() -> None:
    """Take settings from the Querybook process this package runs in."""
    context.querybook = True


def in_querybook() -> bool:
    return context.querybook


# ---- logging ----------------------------------------------------------------

_standalone_loggers: dict = {}
_querybook_loggers: dict = {}


def get_logger(name: str) -> logging.Logger:
    """A logger as Querybook's ``lib.logger.get_logger(name)`` makes one.

    In Querybook: Querybook's own (stderr and LOG_LOCATION handlers, its
    format).  Standalone: ``logging.getLogger(name)`` given one stderr
    handler in Querybook's format the first time, unless the application
    has configured handlers for it already (then it is left alone).
    """
    if context.querybook:
        # Querybook's get_logger adds handlers at every call: call it once per
        # name, as Querybook's own modules do at import.
        logger = _querybook_loggers.get(name)
        if logger is None:
            from lib.logger import get_logger as querybook_get_logger  # type: ignore

            logger = _querybook_loggers.setdefault(name, querybook_get_logger(name))
        return logger
    logger = _standalone_loggers.get(name)
    if logger is None:
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()  # sys.stderr at each emit
            handler.setFormatter(logging.Formatter(fmt=LOG_FORMAT, datefmt=LOG_DATE_FORMAT))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        _standalone_loggers[name] = logger
    return logger


def package_logger() -> logging.Logger:
    """Where the package reports its own errors and warnings."""
    if context.querybook:
        return get_logger(_querybook_module_path("lib", "event_logger", "__init__.py"))
    return logging.getLogger("querybook_eventlog")


def console_logger() -> logging.Logger:
    """Where ConsoleEventLogger's upstream-format lines go by default."""
    if context.querybook:
        return get_logger(_querybook_module_path("lib", "event_logger", "loggers",
                                                 "console_event_logger.py"))
    return get_logger("querybook_eventlog.console")


def warn(message: str) -> None:
    """A warning for the operator (called from C, in a caller's thread)."""
    package_logger().warning(message)


def _querybook_module_path(*parts: str) -> str:
    """The path Querybook's own module would have (its loggers are named by __file__)."""
    server = _querybook_server_dir()
    return os.path.join(server, *parts) if server else os.path.join(*parts)


def _querybook_server_dir() -> Optional[str]:
    env = sys.modules.get("env")
    path = getattr(env, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) if path else None


# ---- settings -----------------------------------------------------------------

def _querybook_setting(name: str) -> Any:
    from env import QuerybookSettings  # type: ignore

    return getattr(QuerybookSettings, name, None)


def normalise_logger_name(value: Any) -> str:
    """EVENT_LOGGER_NAME as Querybook treats it: YAML null, ``~`` or empty mean "null"."""
    if isinstance(value, str):
        value = value.strip()
    if value in NULL_NAMES:
        return "null"
    return value if isinstance(value, str) else str(value)


def configured_logger_name() -> str:
    """EVENT_LOGGER_NAME: Querybook's setting inside Querybook; standalone, the
    environment variable when present (even empty), else the config yaml,
    else "null".  ``~``, YAML null and "" all mean "null"."""
    if context.querybook:
        return normalise_logger_name(_querybook_setting("EVENT_LOGGER_NAME"))
    if "EVENT_LOGGER_NAME" in os.environ:
        return normalise_logger_name(os.environ["EVENT_LOGGER_NAME"])
    for path in _config_yaml_paths():
        found, value = _value_from_yaml(path, "EVENT_LOGGER_NAME")
        if found:
            return normalise_logger_name(value)
    return "null"


DURABILITY_ENV = "QBEL_DURABILITY"


def durability(default: Optional[str] = None) -> str:
    """DBEventLogger's durability when none is passed: env QBEL_DURABILITY,
    else ``default``, else the built-in default, ``"process"``
    (``_core._db_defaults()``, from csrc/defaults.h).  The DB logger keeps
    the in-memory queue instead when a value from here cannot be honoured
    (``spool_dir=None``, or a ``max_queue_bytes`` too small for a journal);
    an explicit ``durability="process"`` there is a ValueError."""
    value = os.environ.get(DURABILITY_ENV, "").strip().lower()
    if value:
        return value
    if default is not None:
        return default
    from querybook_eventlog import _core

    return str(_core._db_defaults()["durability"])


def database_conn() -> Optional[str]:
    """DATABASE_CONN: Querybook's setting inside Querybook (env or yaml), else
    the environment variable, else the config yaml; None when unset."""
    if context.querybook:
        value = _querybook_setting("DATABASE_CONN")
        return value if isinstance(value, str) and value else None
    value = os.environ.get("DATABASE_CONN")
    if value:
        return value
    for path in _config_yaml_paths():
        found, value = _value_from_yaml(path, "DATABASE_CONN")
        if found:
            return value or None
    return None


def _config_yaml_paths() -> List[str]:
    """Querybook's config files, in the order Querybook reads them (standalone)."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return [explicit]
    root = os.environ.get("QUERYBOOK_ROOT")
    if not root:
        return []
    return [os.path.join(root, "querybook", "config", "querybook_config.yaml"),
            os.path.join(root, "querybook", "config", "querybook_default_config.yaml")]


def _value_from_yaml(path: str, key: str) -> "tuple[bool, Optional[str]]":
    """(found, value) of a top-level scalar in a Querybook config yaml.

    Uses PyYAML when it is installed (Querybook has it), else reads flat
    ``KEY: value`` lines.  Unreadable or malformed files count as not found.
    """
    try:
        with open(path, encoding="utf-8") as config:
            text = config.read()
    except (OSError, UnicodeDecodeError):
        return False, None
    try:
        import yaml  # type: ignore
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            data = yaml.safe_load(text)
        except Exception:  # a broken yaml must not break logging
            return False, None
        if not isinstance(data, dict) or key not in data:
            return False, None
        value = data[key]
        return True, None if value is None else str(value)
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key and not line[:1].isspace():
            value = value.split(" #", 1)[0].strip()
            if value in ("~", "null", "Null", "NULL", ""):
                return True, None
            return True, value.strip("'\"")
    return False, None


# ---- EventType ------------------------------------------------------------------

def event_type_class():
    """The EventType the application compares against: Querybook's
    ``const.event_log.EventType`` inside Querybook, else the package's own."""
    if context.querybook:
        from const.event_log import EventType  # type: ignore

        return EventType
    from ._event_type import EventType

    return EventType


def apply_application_event_type() -> None:
    """Make the C core hand the application's EventType members to Python
    ``log()`` overrides (plugins compare ``event_type == EventType.API``)."""
    from . import _core

    _core._set_application_event_type(event_type_class() if context.querybook else None)
