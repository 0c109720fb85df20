"""Type stubs for querybook_eventlog._core, the C core."""

import enum
from typing import (IO, Any, Dict, List, Literal, Mapping, Optional, Protocol, Type, TypeVar,
                    Union)

from ._event_type import EventType

MAX_JSON_DEPTH: int
MAX_STR_PARAM_LENGTH: int

# EventType, or a member of any enum.Enum whose value is one of the four
# names (Querybook's const.event_log.EventType), or the name itself.
_EventTypeArg = Union[EventType, enum.Enum, Literal["API", "WEBSOCKET", "VIEW", "CLICK"]]
# Any value dumps() encodes; None is JSON null (SQL NULL in the DB logger).
_EventData = Any
_Rule = Dict[str, str]

class _InfoLogger(Protocol):
    def info(self, msg: str, /) -> Any: ...

def dumps(obj: Any, /) -> bytes: ...

class BaseEventLogger:
    """Abstract: subclasses define the property ``logger_name`` and ``log``.
    Registered as a virtual subclass of ``abc.ABC``; instances have a
    ``__dict__`` (so ``unittest.mock.patch.object(logger, "log")`` works)."""

    __dict__: Dict[str, Any]

    @property
    def logger_name(self) -> str: ...
    def log(
        self,
        uid: Optional[int],
        event_type: _EventTypeArg,
        event_data: _EventData,
        timestamp: Optional[float] = None,
    ) -> None: ...
    @property
    def _api_allow_list(self) -> Optional[List[_Rule]]: ...
    @property
    def _api_deny_list(self) -> Optional[List[_Rule]]: ...
    def _should_log_api_request(self, route: str, method: str) -> bool: ...
    def log_api_request(
        self, uid: Optional[int], route: str, method: str, params: Mapping[str, Any]
    ) -> None: ...
    def log_websocket_event(
        self, uid: Optional[int], route: str, args: List[Any], kwargs: Dict[str, Any]
    ) -> None: ...
    def _fan_out_log(
        self,
        members: tuple[BaseEventLogger, ...],
        uid: Optional[int],
        event_type: _EventTypeArg,
        event_data: _EventData,
        timestamp: Optional[float],
        /,
    ) -> Optional[list[tuple[BaseEventLogger, Exception]]]: ...
    def _fan_out_log_api_request(
        self,
        members: tuple[BaseEventLogger, ...],
        uid: Optional[int],
        route: str,
        method: str,
        params: Mapping[str, Any],
        /,
    ) -> list[tuple[BaseEventLogger, Exception]]: ...
    def _fan_out_log_websocket_event(
        self,
        members: tuple[BaseEventLogger, ...],
        uid: Optional[int],
        route: str,
        args: List[Any],
        kwargs: Dict[str, Any],
        /,
    ) -> list[tuple[BaseEventLogger, Exception]]: ...

class NullEventLogger(BaseEventLogger):
    def __init__(self) -> None: ...

class ConsoleEventLogger(BaseEventLogger):
    def __init__(
        self,
        stream: Optional[IO[str]] = None,
        *,
        format: Optional[Literal["upstream", "text", "jsonl"]] = None,
        color: Optional[bool] = None,
        logger: Optional[_InfoLogger] = None,
    ) -> None: ...
    @property
    def stream(self) -> Optional[IO[str]]: ...
    @property
    def logger(self) -> Optional[_InfoLogger]: ...
    @property
    def color(self) -> Optional[bool]: ...
    @property
    def format(self) -> Literal["upstream", "text", "jsonl"]: ...

_W = TypeVar("_W", bound="_WriterLogger")

class _WriterLogger(BaseEventLogger):
    """Stub only, no such class at run time: the methods the writer-backed
    loggers (DBEventLogger, KafkaEventLogger) share (csrc/writer_logger.c)."""

    @property
    def closed(self) -> bool: ...
    def __enter__(self: _W) -> _W: ...
    def __exit__(self, *exc_info: Any) -> None: ...
    def flush(self, timeout: Optional[float] = None) -> bool: ...
    def close(self, timeout: Optional[float] = None) -> None: ...
    def stats(self) -> Dict[str, Any]: ...

class DBEventLogger(_WriterLogger):
    def __init__(
        self,
        url: Optional[str] = None,
        *,
        table: str = "event_log",
        batch_size: int = ...,
        flush_interval: float = ...,
        max_queue_bytes: int = ...,
        max_event_bytes: int = ...,
        spool_dir: Optional[str] = ...,
        sync: bool = False,
        sync_timeout: Optional[float] = 30.0,
        durability: Optional[str] = None,
        create_table: bool = False,
        connect_timeout: float = ...,
        read_timeout: float = ...,
        write_timeout: float = ...,
        exit_timeout: float = ...,
        backoff_initial: float = ...,
        backoff_max: float = ...,
    ) -> None: ...

class KafkaEventLogger(_WriterLogger):
    def __init__(
        self,
        bootstrap_servers: Optional[str] = None,
        topic: Optional[str] = None,
        *,
        key: Optional[Literal["uid"]] = "uid",
        config: Optional[Dict[str, Union[str, int, float, bool]]] = None,
        batch_size: int = ...,
        flush_interval: float = ...,
        max_queue_bytes: int = ...,
        spool_dir: Optional[str] = ...,
        connect_timeout: float = ...,
        exit_timeout: float = ...,
        backoff_initial: float = ...,
        backoff_max: float = ...,
        transactional_id: Optional[str] = None,
    ) -> None: ...

def _set_application_event_type(enum_class: Optional[Type[enum.Enum]], /) -> None: ...
def _replay_spool(
    url_parts: Dict[str, Any], spool_dir: str, table: str, adopt_all: bool = False, /
) -> int: ...
def _atexit_flush_all() -> None: ...
def _db_defaults() -> Dict[str, Any]: ...
def _unicode_simd_path() -> str: ...
def log_client_events(
    logger: BaseEventLogger, uid: Optional[int], body: Union[bytes, bytearray, memoryview, str], /
) -> "tuple[int, List[tuple[int, str]]]": ...
