"""A plugin whose dependency is not installed: importing it fails."""

import kafka_not_installed  # noqa: F401

from lib.event_logger.base_event_logger import BaseEventLogger


class KafkaEventLogger(BaseEventLogger):
    @property
    def logger_name(self) -> str:
        return "kafka"

    def log(self, uid, event_type, event_data, timestamp=None):
        kafka_not_installed.send(event_data)


ALL_PLUGIN_EVENT_LOGGERS = [KafkaEventLogger()]
