from datetime import datetime

from const.event_log import EventType
from lib.event_logger.base_event_logger import BaseEventLogger
from models.event_log import EventLog


def _exact(route, method):
    return {"type": "exact", "route": route, "method": method}


class DBEventLogger(BaseEventLogger):
    """Inserts each event into Querybook's event_log table."""

    @property
    def logger_name(self) -> str:
        return "db"

    @property
    def _api_deny_list(self) -> list:
        return [
            {"type": "prefix", "route": "/admin", "method": "*"},
            {"type": "prefix", "route": "/user", "method": "GET"},
            _exact("/login/", "POST"),
            _exact("/signup/", "POST"),
            _exact("/user/setting/<key>/", "POST"),
            _exact("/table/<schema_name>/<table_name>/sync/", "PUT"),
            _exact("/announcement/", "GET"),
            _exact("/query/validate/", "POST"),
            _exact("/query_engine/<int:engine_id>/status/", "GET"),
            _exact("/impression/<item_type>/<item_id>/count/", "GET"),
            _exact("/utils/change_logs/", "GET"),
            _exact("/query_engine/", "GET"),
            _exact("/query_metastore/", "GET"),
            _exact("/dag_exporter/", "GET"),
        ]

    def log(self, uid: int, event_type: EventType, event_data: dict, timestamp: int = None):
        created_at = None if timestamp is None else datetime.utcfromtimestamp(timestamp / 1000)
        EventLog.create(
            {
                "uid": uid,
                "event_type": event_type,
                "event_data": event_data,
                "created_at": created_at,
            }
        )
