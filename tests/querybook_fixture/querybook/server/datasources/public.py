from app.datasource import register
from const.event_log import EventType
from lib.event_logger import event_logger


@register("/public/status/", methods=["GET"], require_auth=False)
def get_status():
    return "ok"


@register("/public/landing_view/", methods=["POST"], require_auth=False, api_logging=False)
def log_landing_view(path="/"):
    """A page shown to signed-out visitors records its own VIEW event."""
    event_logger.log(EventType.VIEW, {"path": path, "component": "LANDING_PAGE", "element": None})
    return "logged"
