"""The Querybook adapter: what ``querybook/server/lib/event_logger/`` becomes.

Querybook adopts the package with one edit (``adopt()``, or by hand as the
README shows): the files of ``lib/event_logger/`` become thin re-exports of
this subpackage's mirror modules -- ``facade`` (upstream's
``__init__``), ``base_event_logger``, ``all_event_loggers`` and
``loggers/*`` -- so every name upstream's modules export still resolves.

Importing a mirror module switches the package to Querybook's own settings
(``env.QuerybookSettings``), EventType (``const.event_log``) and logger
(``lib.logger.get_logger``), none of which is imported until used.
Importing this package, ``adoption`` or ``schema`` switches nothing.
"""

import importlib

from .adoption import adopt

__all__ = ["adopt"]


def __getattr__(name):
    # EventLogger, event_logger, LOG, ...: upstream's lib.event_logger names.
    # import_module, not "from . import facade": that would call this
    # __getattr__ for "facade" first, and recurse.
    facade = importlib.import_module(__name__ + ".facade")
    try:
        return getattr(facade, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
