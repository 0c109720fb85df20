# flake8: noqa
from . import admin
from . import datadoc
from . import event_log
from . import public
from . import user
