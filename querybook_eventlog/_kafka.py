"""KafkaEventLogger's Python side: its settings (Querybook's config, then the
environment, then the config yaml) resolved on first use, and the atexit
close of every live Kafka logger.  The logger itself is C (csrc/kafka_logger.c).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import weakref
from typing import Any, Dict, Optional, Tuple

from . import _settings

DEFAULT_TOPIC = "querybook_event_log"
BOOTSTRAP_SETTING = "EVENT_LOGGER_KAFKA_BOOTSTRAP_SERVERS"
TOPIC_SETTING = "EVENT_LOGGER_KAFKA_TOPIC"
CONFIG_SETTING = "EVENT_LOGGER_KAFKA_CONFIG"

_live: "weakref.WeakSet[Any]" = weakref.WeakSet()
_live_lock = threading.Lock()
_atexit_registered = False


def _setting(name: str) -> Any:
    """A setting as DATABASE_CONN is read: Querybook's inside Querybook (an
    attribute of QuerybookSettings, else its env.get_env_config: the
    environment, querybook_config, the default config -- these names are not
    QuerybookSettings attributes upstream), else the environment, else the
    config yaml; None when unset or empty."""
    if _settings.in_querybook():
        value = _settings._querybook_setting(name)
        if value in (None, ""):
            try:
                from env import get_env_config  # type: ignore
            except ImportError:
                return None
            value = get_env_config(name)
        return value if value not in (None, "") else None
    value = os.environ.get(name)
    if value:
        return value
    for path in _settings._config_yaml_paths():
        found, value = _settings._value_from_yaml(path, name)
        if found:
            return value or None
    return None


def _config_setting() -> Dict[str, Any]:
    value = _setting(CONFIG_SETTING)
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{CONFIG_SETTING} must be a JSON object of librdkafka "
                         f"properties: {error}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{CONFIG_SETTING} must be a JSON object of librdkafka properties, "
                         f"not {type(parsed).__name__}")
    return parsed


def resolve_settings(bootstrap_servers: Optional[str], topic: Optional[str],
                     config: Optional[Dict[str, Any]]) -> Tuple[str, str, Dict[str, Any]]:
    """(bootstrap_servers, topic, config) with the None ones from the settings.
    RuntimeError when no bootstrap servers are configured anywhere."""
    if bootstrap_servers is None:
        bootstrap_servers = _setting(BOOTSTRAP_SETTING)
        if not bootstrap_servers:
            raise RuntimeError("KafkaEventLogger has no bootstrap servers: set "
                               f"{BOOTSTRAP_SETTING} or pass bootstrap_servers=")
    if topic is None:
        topic = _setting(TOPIC_SETTING) or DEFAULT_TOPIC
    if config is None:
        config = _config_setting()
    return str(bootstrap_servers), str(topic), config


def track(logger: Any) -> None:
    """Close `logger` (flushing for its exit_timeout) at interpreter exit."""
    global _atexit_registered
    with _live_lock:
        _live.add(logger)
        if not _atexit_registered:
            atexit.register(_close_all)
            _atexit_registered = True


def _close_all() -> None:
    with _live_lock:
        loggers = list(_live)
    for logger in loggers:
        try:
            logger.close()
        except Exception as error:  # one logger's failure must not stop the others
            _settings.package_logger().error("closing %r at exit failed: %s", logger, error)
