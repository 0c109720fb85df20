"""Upstream's ``lib/event_logger/loggers/``: the builtin loggers."""
