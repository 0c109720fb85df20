from enum import Enum
from typing import TypedDict


class EventType(Enum):
    API = "API"  # an api request
    WEBSOCKET = "WEBSOCKET"  # a websocket event
    VIEW = "VIEW"  # a UI element is viewed
    CLICK = "CLICK"  # a UI element is clicked


class FrontendEvent(TypedDict):
    timestamp: int
    event_data: dict
    event_type: str  # an EventType value
