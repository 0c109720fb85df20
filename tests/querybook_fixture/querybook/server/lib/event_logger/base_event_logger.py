from abc import ABC, abstractmethod
from typing import TypedDict

from const.event_log import EventType

MAX_STR_PARAM_LENGTH = 128


class ApiFilterRule(TypedDict):
    """An allow/deny rule: type 'prefix' | 'exact', a route, a method or '*'."""

    type: str
    route: str
    method: str


class BaseEventLogger(ABC):
    """What every event logger implements: logger_name and log()."""

    @property
    @abstractmethod
    def logger_name(self) -> str:
        raise NotImplementedError()

    @property
    def _api_allow_list(self) -> list:
        """When not None, only the API requests matching one of these are logged."""
        return None

    @property
    def _api_deny_list(self) -> list:
        """API requests matching one of these are not logged (without an allow list)."""
        return [
            {"type": "prefix", "route": "/admin", "method": "*"},
            {"type": "exact", "route": "/login/", "method": "POST"},
            {"type": "exact", "route": "/signup/", "method": "POST"},
        ]

    def _should_log_api_request(self, route: str, method: str) -> bool:
        allow_list = self._api_allow_list
        if allow_list is not None:
            return any(self.__rule_matches(rule, route, method) for rule in allow_list)
        deny_list = self._api_deny_list
        if deny_list is not None:
            return not any(self.__rule_matches(rule, route, method) for rule in deny_list)
        return True

    @abstractmethod
    def log(self, uid: int, event_type: EventType, event_data: dict, timestamp: int = None) -> None:
        """Record one event; timestamp in milliseconds since the epoch."""
        raise NotImplementedError()

    def log_api_request(self, uid: int, route: str, method: str, params: dict) -> None:
        if not self._should_log_api_request(route, method):
            return
        event_data = {"method": method, "route": route, "params": self.__prune(params)}
        self.log(uid=uid, event_type=EventType.API, event_data=event_data)

    def log_websocket_event(self, uid: int, route: str, args: list, kwargs: dict) -> None:
        event_data = {"route": route, "args": args, "kwargs": kwargs}
        self.log(uid=uid, event_type=EventType.WEBSOCKET, event_data=event_data)

    def __rule_matches(self, rule: ApiFilterRule, route: str, method: str) -> bool:
        if rule["type"] == "prefix":
            route_matches = route.startswith(rule["route"])
        else:
            route_matches = route == rule["route"]
        return route_matches and rule["method"] in ("*", method)

    def __prune(self, params: dict) -> dict:
        pruned = {}
        for key, value in params.items():
            if isinstance(value, str) and len(value) > MAX_STR_PARAM_LENGTH:
                pruned[key] = value[:MAX_STR_PARAM_LENGTH] + "..."
            elif isinstance(value, dict):
                pruned[key] = self.__prune(value)
            else:
                pruned[key] = value
        return pruned
