import json

import flask

from app.datasource import register
from const.event_log import EventType
from lib.event_logger import event_logger


@register("/context_log/", methods=["POST"], api_logging=False)
def log_frontend_event():
    """The browser's batch of FrontendEvents from navigator.sendBeacon().

    A beacon is not flagged as JSON (flask.request.is_json is False), so the
    raw body is parsed here rather than by register().
    """
    for event in json.loads(flask.request.data):
        event_logger.log(
            event_type=EventType(event["type"]),
            event_data=event["data"],
            timestamp=event["timestamp"],
        )
