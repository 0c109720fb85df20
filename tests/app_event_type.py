"""An application's own EventType, as Querybook's const.event_log.EventType
looks: a different class from querybook_eventlog's, with the same values."""

import enum


class QuerybookEventType(enum.Enum):
    API = "API"
    WEBSOCKET = "WEBSOCKET"
    VIEW = "VIEW"
    CLICK = "CLICK"
