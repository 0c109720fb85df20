"""Runs requests through Querybook's Flask app in this process, as its web
server would, and writes what came back as JSON.

    python drive_app.py PLAN.json RESULT.json

PLAN: {"steps": [...], "flush": seconds or null, "count_rows": bool}; a step is
  {"http": "GET"|"POST", "url": "/ds/...", "uid": int|null,
   "json": {...} | "params": {...} | "body": "raw text"}
  {"ws": event, "namespace": "/datadoc", "uid": int|null, "args": [...], "kwargs": {...}}
uid is sent as the header the fake auth reads (no uid: an anonymous user).
"""

import json
import sys
import time

from app.server import flask_app, socketio
from lib.event_logger import event_logger


def headers_for(step):
    uid = step.get("uid")
    return {} if uid is None else {"X-Test-Uid": str(uid)}


def run_http(client, step):
    kwargs = {"headers": headers_for(step)}
    if "json" in step:
        kwargs["json"] = step["json"]
    if "params" in step:
        kwargs["query_string"] = {"params": json.dumps(step["params"])}
    if "body" in step:  # navigator.sendBeacon(url, string): text/plain, not JSON
        kwargs["data"] = step["body"].encode("utf-8")
        kwargs["content_type"] = "text/plain;charset=UTF-8"
    response = client.open(step["url"], method=step["http"], **kwargs)
    return [response.status_code, response.get_json(silent=True)]


def run_ws(step):
    handler = socketio.handlers[(step["namespace"], step["ws"])]
    with flask_app.test_request_context("/socket.io/", headers=headers_for(step)):
        handler(*step.get("args", []), **step.get("kwargs", {}))
    return ["ws", None]


def main(plan_path, result_path):
    with open(plan_path) as plan_file:
        plan = json.load(plan_file)
    client = flask_app.test_client()
    responses = []
    for step in plan["steps"]:
        responses.append(run_ws(step) if "ws" in step else run_http(client, step))
        time.sleep(plan.get("pause", 0))
    flushed = None
    if plan.get("flush") is not None:  # the DB logger's flush(timeout)
        flush = getattr(event_logger.logger, "flush", None)
        flushed = flush(plan["flush"]) if flush is not None else "no flush()"
    rows_seen = None
    if plan.get("count_rows"):  # what the app's own database session sees now
        from sqlalchemy import text

        from app.db import DBSession

        with DBSession() as session:
            rows_seen = session.execute(text("SELECT COUNT(*) FROM event_log")).scalar()
    try:  # only the facade's methods promise not to raise
        logger = event_logger.logger
        logger_class, logger_name = type(logger).__name__, logger.logger_name
    except Exception as error:
        logger_class = logger_name = f"{type(error).__name__}: {error}"
    result = {
        "rows_seen": rows_seen,
        "responses": responses,
        "flushed": flushed,
        "logger": logger_class,
        "logger_name": logger_name,
        "emitted": [list(map(str, item)) for item in socketio.emitted],
    }
    with open(result_path, "w") as result_file:
        json.dump(result, result_file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
