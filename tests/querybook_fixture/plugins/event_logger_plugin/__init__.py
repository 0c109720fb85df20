"""An event logger plugin written as Querybook's docs describe
(docs_website/docs/integrations/add_event_logger.mdx): it subclasses
BaseEventLogger, names itself, implements log(), and narrows the API
requests it gets with _api_allow_list.  It appends what it receives, as JSON
lines, to the file named by $QB_PLUGIN_EVENTS."""

import json
import os

from const.event_log import EventType
from lib.event_logger.base_event_logger import BaseEventLogger


class FileEventLogger(BaseEventLogger):
    @property
    def logger_name(self) -> str:
        return "file_plugin"

    @property
    def _api_allow_list(self):
        return [
            {"type": "prefix", "route": "/datadoc", "method": "*"},
            {"type": "exact", "route": "/query/validate/", "method": "PUT"},
        ]

    def log(self, uid: int, event_type: EventType, event_data: dict, timestamp: int = None) -> None:
        record = {
            "logger": self.logger_name,
            "uid": uid,
            "event_type": event_type.name,
            "is_querybook_event_type": type(event_type) is EventType,
            "is_api": event_type == EventType.API,
            "event_data": event_data,
            "timestamp": timestamp,
        }
        with open(os.environ["QB_PLUGIN_EVENTS"], "a") as out:
            out.write(json.dumps(record, default=repr) + "\n")


ALL_PLUGIN_EVENT_LOGGERS = [FileEventLogger()]
