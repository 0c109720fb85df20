"""Import-and-smoke run for the CPythons that do not run the whole suite.

Exercises each part of the C core once through the public API and exits
non-zero (with a traceback) on the first thing that does not work.
"""

import io
import json
import sys

import querybook_eventlog as qe


class Plugin(qe.BaseEventLogger):
    def __init__(self):
        self.seen = []

    @property
    def logger_name(self):
        return "smoke"

    def log(self, uid, event_type, event_data, timestamp=None):
        self.seen.append((uid, event_type, event_data))


def main():
    event = {"id": 7, "rank": 0.1 + 0.2, "q": "select é", "nested": {"ids": [1, 2]}}
    assert json.loads(qe.dumps(event)) == event
    qe.NullEventLogger().log(uid=1, event_type=qe.EventType.VIEW, event_data=event)
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream=stream, format="jsonl").log(
        uid=5, event_type="CLICK", event_data=event, timestamp=1700000000000)
    assert json.loads(stream.getvalue())["event_data"] == event
    plugin = Plugin()
    plugin.log_api_request(uid=3, route="/datadoc/", method="POST", params={"t": "x" * 200})
    plugin.log_api_request(uid=3, route="/admin/x", method="GET", params={})
    assert len(plugin.seen) == 1 and plugin.seen[0][1] is qe.EventType.API
    assert plugin.seen[0][2]["params"]["t"] == "x" * 128 + "..."
    try:
        type("Abstract", (qe.BaseEventLogger,), {})()
    except TypeError:
        pass
    else:
        raise AssertionError("an abstract plugin was instantiated")
    logged, rejected = qe.log_client_events(
        plugin, 9, b'[{"type": "VIEW", "data": {"path": "/"}, "timestamp": 1700000000000}, {}]')
    assert logged == 1 and len(rejected) == 1
    db = qe.DBEventLogger("mysql://user:pw@127.0.0.1:1/db")
    assert "pw" not in repr(db)
    db.close()
    assert [logger.logger_name for logger in qe.ALL_EVENT_LOGGERS][:3] == ["console", "null", "db"]
    from querybook_eventlog.querybook.adoption import ADOPTED_FILES  # switches to Querybook mode

    assert "__init__.py" in ADOPTED_FILES
    print(f"smoke ok on Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
