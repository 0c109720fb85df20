# flake8: noqa
from .user import *
from .event_log import *
