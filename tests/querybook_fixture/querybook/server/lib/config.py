import os

import yaml

from const.path import CONFIG_PATH

_loaded_config = None


def get_config():
    """Every yaml of querybook/config, by file name without extension."""
    global _loaded_config
    if not _loaded_config:
        _loaded_config = {}
        for file_name in os.listdir(CONFIG_PATH):
            with open(os.path.join(CONFIG_PATH, file_name)) as config_file:
                _loaded_config[file_name.split(".")[0]] = yaml.load(
                    config_file, Loader=yaml.FullLoader
                )
    return _loaded_config


def get_config_value(path, default=None):
    """The value at a "."-separated path of the loaded configs, else default."""
    value = get_config()
    keys = path.split(".")
    while keys and value:
        value = value.get(keys.pop(0))
    return value or default
