from importlib import import_module

from lib.logger import get_logger

LOG = get_logger(__file__)


def import_module_with_default(module_path: str, module_variable: str = None, **kwargs):
    """import_module(module_path) (or its module_variable); with a `default`
    keyword, a failed import (or a falsy value) gives the default instead."""
    has_default = "default" in kwargs
    try:
        value = import_module(module_path)
        if module_variable is not None:
            value = getattr(value, module_variable, None)
        if not value and has_default:
            value = kwargs["default"]
        return value
    except (ImportError, ModuleNotFoundError) as err:
        LOG.debug(f"Cannot import {module_path}.{module_variable} due to: {str(err)}")
        if not has_default:
            raise err
        return kwargs["default"]
