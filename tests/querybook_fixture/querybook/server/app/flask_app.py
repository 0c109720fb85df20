import flask
from flask_login import LoginManager

from env import QuerybookSettings

flask_app = flask.Flask(__name__)
flask_app.secret_key = QuerybookSettings.FLASK_SECRET_KEY

login_manager = LoginManager()
login_manager.init_app(flask_app)


class SocketIORegistry:
    """Stands in for flask_socketio.SocketIO: handlers by (namespace, event)."""

    def __init__(self):
        self.handlers = {}
        self.emitted = []

    def on(self, event, namespace=None):
        def register(handler):
            self.handlers[(namespace, event)] = handler
            return handler

        return register

    def emit(self, event, *args, **kwargs):
        self.emitted.append((event, args, kwargs))


socketio = SocketIORegistry()
