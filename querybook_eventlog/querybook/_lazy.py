"""Names the adapter's modules resolve from Querybook only when accessed."""

from .. import _settings


def querybook_name(name):
    """The value of one of upstream's imported names, or raise AttributeError."""
    if name == "EventType":
        _settings.apply_application_event_type()
        return _settings.event_type_class()
    if name == "get_logger":
        from lib.logger import get_logger  # type: ignore

        return get_logger
    if name == "import_module_with_default":
        from lib.utils.import_helper import import_module_with_default  # type: ignore

        return import_module_with_default
    if name == "EventLog":
        from models.event_log import EventLog  # type: ignore

        return EventLog
    raise AttributeError(name)


def module_getattr(module_name, extra=None):
    """A PEP 562 ``__getattr__`` for one of the adapter's modules."""

    def __getattr__(name):
        if extra is not None and name in extra:
            return extra[name]()
        try:
            return querybook_name(name)
        except AttributeError:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}") from None

    return __getattr__
