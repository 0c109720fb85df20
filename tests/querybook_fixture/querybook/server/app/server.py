# flake8: noqa
"""The web app as the server runs it: the Flask app with every endpoint."""
from app.flask_app import flask_app, socketio
import app.auth
import datasources
import datasources_socketio
