from datetime import datetime

from const.event_log import EventType
from lib.event_logger.base_event_logger import BaseEventLogger
from lib.logger import get_logger

LOG = get_logger(__file__)

COLOR_YELLOW = "\x1b[33;20m"
COLOR_RESET = "\x1b[0m"


class ConsoleEventLogger(BaseEventLogger):
    """Writes each event to Querybook's log (for debugging)."""

    @property
    def logger_name(self) -> str:
        return "console"

    def log(self, uid: int, event_type: EventType, event_data: dict, timestamp: int = None):
        when = datetime.utcnow() if timestamp is None else datetime.utcfromtimestamp(timestamp / 1000)
        created_at = when.strftime("%Y-%m-%d %H:%M:%S")
        line = f"created_at: {created_at}, uid={uid}, event_type={event_type}, event_data={event_data}"
        LOG.info(f"{COLOR_YELLOW}{type(self).__name__} - {line}{COLOR_RESET}")
