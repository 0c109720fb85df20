import json
import os
import sys

from const.path import DEFAULT_PLUGIN_PATH
from lib.config import get_config_value

in_test = hasattr(sys, "_called_from_test")
querybook_config = get_config_value("querybook_config", {})
querybook_default_config = get_config_value("querybook_default_config", {})


class MissingConfigException(Exception):
    pass


def is_json(value):
    """Whether value is a JSON dict or list."""
    try:
        return isinstance(json.loads(value), (dict, list))
    except ValueError:
        return False


def get_env_config(name, optional=True):
    """The environment (even when empty), else querybook_config, else the default config."""
    found = True
    value = None
    if name in os.environ:
        value = os.environ.get(name)
    elif name in querybook_config:
        value = querybook_config.get(name)
    elif name in querybook_default_config:
        value = querybook_default_config.get(name)
        found = value is not None
    else:
        found = False
    if not found and not optional and not in_test:
        raise MissingConfigException(f"{name} is required to start the process.")
    if isinstance(value, str) and is_json(value):
        value = json.loads(value)
    return value


class QuerybookSettings(object):
    # Core
    PRODUCTION = os.environ.get("production", "false") == "true"
    PUBLIC_URL = get_env_config("PUBLIC_URL")
    FLASK_SECRET_KEY = get_env_config("FLASK_SECRET_KEY", optional=False)
    WS_CORS_ALLOWED_ORIGINS = get_env_config("WS_CORS_ALLOWED_ORIGINS", optional=False)
    QUERYBOOK_PLUGIN_PATH = get_env_config("QUERYBOOK_PLUGIN") or DEFAULT_PLUGIN_PATH

    # Database
    DATABASE_CONN = get_env_config("DATABASE_CONN", optional=False)
    DATABASE_POOL_SIZE = int(get_env_config("DATABASE_POOL_SIZE"))
    DATABASE_POOL_RECYCLE = int(get_env_config("DATABASE_POOL_RECYCLE"))

    # Logging
    LOG_LOCATION = get_env_config("LOG_LOCATION")

    # Event Logging
    EVENT_LOGGER_NAME = get_env_config("EVENT_LOGGER_NAME") or "null"
