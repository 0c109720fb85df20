import functools
import json
import socket
import traceback

import flask
from flask_login import current_user

from app.db import get_session
from app.flask_app import flask_app
from const.datasources import (
    DS_PATH,
    OK_STATUS_CODE,
    UNAUTHORIZED_STATUS_CODE,
    UNKNOWN_SERVER_ERROR_STATUS_CODE,
)
from lib.event_logger import event_logger
from lib.logger import get_logger

LOG = get_logger(__file__)
_host = socket.gethostname()


def register(url, methods=None, require_auth=True, custom_response=False, api_logging=True):
    """A data source endpoint at DS_PATH + url; API requests are event-logged."""

    def wrapper(fn):
        @flask_app.route(DS_PATH + url, methods=methods)
        @functools.wraps(fn)
        def handler(**kwargs):
            if require_auth and not current_user.is_authenticated:
                flask.abort(UNAUTHORIZED_STATUS_CODE, description="Login required.")

            params = {}
            if flask.request.method == "GET":
                params = json.loads(flask.request.args.get("params", "{}"))
            elif flask.request.is_json:
                params = flask.request.json

            status = OK_STATUS_CODE
            try:
                kwargs.update(params)
                if api_logging and not url.startswith("/admin"):
                    event_logger.log_api_request(method=flask.request.method, route=url, params=kwargs)
                results = fn(**kwargs)
                if not custom_response:
                    results = {"data": results, "host": _host}
            except Exception as e:
                LOG.error(e, exc_info=True)
                status = UNKNOWN_SERVER_ERROR_STATUS_CODE
                results = {"host": _host, "error": str(e), "traceback": traceback.format_exc()}
            finally:
                if status != OK_STATUS_CODE and "database_session" in flask.g:
                    flask.g.database_session.rollback()
            if custom_response:
                return results
            return flask.make_response(flask.jsonify(results), status)

        handler.__raw__ = fn
        return handler

    return wrapper


@flask_app.teardown_request
def teardown_database_session(error):
    if flask.g.pop("database_session", None) is not None:
        get_session().remove()
