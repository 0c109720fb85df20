# flake8: noqa
from . import datadoc
