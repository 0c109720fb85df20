"""EventType: the kinds of event Querybook records (upstream's enum, value == name)."""

import enum


class EventType(enum.Enum):
    """What happened: an API call, a websocket event, a page view or a click."""

    API = "API"
    WEBSOCKET = "WEBSOCKET"
    VIEW = "VIEW"
    CLICK = "CLICK"
