import logging
import sys

from env import QuerybookSettings


def get_logger(module):
    """A logger named `module` writing to stderr and, when set, LOG_LOCATION."""
    log = logging.getLogger(module)
    try:
        formatter = logging.Formatter(
            fmt='[%(asctime)s] - %(name)s - %(levelname)-8s"%(message)s"',
            datefmt="%Y-%m-%d %a %H:%M:%S",
        )
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setFormatter(formatter)
        log.addHandler(stream_handler)
        if QuerybookSettings.LOG_LOCATION is not None:
            file_handler = logging.FileHandler(QuerybookSettings.LOG_LOCATION)
            file_handler.setFormatter(formatter)
            log.addHandler(file_handler)
    except IOError:
        print(f"{QuerybookSettings.LOG_LOCATION} not found")
    log.setLevel(logging.INFO if QuerybookSettings.PRODUCTION else logging.DEBUG)
    return log
