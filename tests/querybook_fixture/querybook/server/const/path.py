import os

# querybook/server/const/ -> the checkout's root
PROJECT_ROOT_PATH = os.path.join(os.path.dirname(__file__), "../../../")
CONFIG_PATH = os.path.join(PROJECT_ROOT_PATH, "./querybook/config")
DEFAULT_PLUGIN_PATH = os.path.join(PROJECT_ROOT_PATH, "./plugins")
