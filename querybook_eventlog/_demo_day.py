"""A synthetic Querybook day: the events a few hundred users' browsers and
Querybook's server send, shaped exactly as upstream sends them.

- VIEW / CLICK: ``webapp/lib/analytics.ts`` sends ``{path, component,
  element, aux}`` with ``path = location.pathname`` and names from
  ``webapp/const/analytics.ts``; keys whose value is undefined are absent
  (JSON.stringify drops them), so ``useTrackView(LANDING_PAGE)`` sends
  ``{path, component}`` only.  A search that shows results sends a VIEW of
  SEARCH_MODAL, element ``<TYPE>_RESULT_ITEM``, aux ``{nlp, search, results,
  page}``; clicking a result sends the same aux plus ``pos`` (its index).
- API: ``app/datasource.py`` logs ``{method, route, params}`` with the route
  as registered (``/datadoc/<int:id>/``) and the view's keyword arguments.
- WEBSOCKET: ``{route: namespace + "/" + event, args, kwargs}``.

API events are built here in log_api_request's shape (that method stamps
"now"; a day needs its own timestamps) from routes outside the DB logger's
deny list.  Deterministic for a seed.
"""

from __future__ import annotations

import random
from typing import Iterator, Tuple

from ._event_type import EventType

ENVIRONMENT = "analytics"
DAY_MS = 24 * 3600 * 1000

# search string -> (result ids the search shows, the one most users click)
TABLE_SEARCHES = {
    "user_events": ([412, 77, 1032, 9, 315], 77),
    "dim_users": ([5, 212, 88, 1401], 5),
    "pin_impressions daily": ([930, 931, 17, 455, 1200, 61], 931),
    "ads revenue": ([301, 302, 1150], 302),
    "signup funnel": ([644, 12, 808], 644),
}
DATADOC_SEARCHES = {
    "weekly metrics": ([21, 104, 3], 104),
    "experiment readout": ([58, 59, 260], 58),
}
QUERY_CELL_CLICKS = ("RUN_QUERY_BUTTON", "RUN_QUERY_BUTTON", "RUN_QUERY_BUTTON", "FORMAT_BUTTON",
                     "FORMAT_BUTTON", "RENDER_QUERY_BUTTON", "RESULT_EXPORT_BUTTON",
                     "INSERT_SNIPPET_BUTTON", "TEMPLATE_CONFIG_BUTTON")
SIDEBAR_CLICKS = ("HOME_BUTTON", "HOME_BUTTON", "DOCS_BUTTON", "TABLES_BUTTON", "EXECS_BUTTON",
                  "SNIPS_BUTTON", "SCHEDS_BUTTON")

Event = Tuple[int, EventType, dict, int]  # uid, type, event_data, timestamp in ms


def _view(path, component, element=None, aux=None) -> dict:
    data = {"path": path, "component": component}
    if element is not None:
        data["element"] = element
    if aux is not None:
        data["aux"] = aux
    return data


_click = _view  # trackClick sends the same four keys


def _api(method: str, route: str, params: dict) -> dict:
    return {"method": method, "route": route, "params": params}


class _Session:
    """One user's visit: events in time order from `start`."""

    def __init__(self, rng: random.Random, uid: int, start: int):
        self.rng, self.uid, self.now = rng, uid, start
        self.events = []

    def emit(self, event_type: EventType, data: dict, gap_ms: Tuple[int, int] = (300, 20000)):
        self.now += self.rng.randint(*gap_ms)
        self.events.append((self.uid, event_type, data, self.now))

    def landing(self) -> None:
        home = f"/{ENVIRONMENT}/"
        self.emit(EventType.API, _api("GET", "/datadoc/", {"environment_id": 1, "filter_mode": "mine"}))
        self.emit(EventType.VIEW, _view(home, "LANDING_PAGE"))
        if self.rng.random() < 0.45:
            doc = self.rng.choice((21, 58, 104, 260, 3))
            element = self.rng.choice(("RECENT_DATADOC", "RECENT_DATADOC", "FAVORITE_DATADOC"))
            self.emit(EventType.CLICK, _click(home, "LANDING_PAGE", element, {"docId": doc}))
            self.datadoc(doc)
        elif self.rng.random() < 0.08:
            self.emit(EventType.CLICK, _click(home, "LANDING_PAGE", "TUTORIAL_BUTTON"))

    def datadoc(self, doc: int) -> None:
        path = f"/{ENVIRONMENT}/datadoc/{doc}/"
        self.emit(EventType.VIEW, _view(path, "DATADOC_PAGE"), (200, 2000))
        self.emit(EventType.API, _api("GET", "/datadoc/<int:id>/", {"id": doc}), (50, 300))
        self.emit(EventType.WEBSOCKET, {"route": "/datadoc/subscribe", "args": [doc], "kwargs": {}},
                  (50, 300))
        for _ in range(self.rng.randint(1, 6)):
            element = self.rng.choice(QUERY_CELL_CLICKS)
            aux = {"case": "upper"} if element == "FORMAT_BUTTON" and self.rng.random() < 0.3 else None
            self.emit(EventType.CLICK, _click(path, "DATADOC_QUERY_CELL", element, aux))
            if element == "RUN_QUERY_BUTTON":
                self.run_query(cell=doc * 10 + self.rng.randint(1, 5))

    def open_datadoc(self) -> None:
        self.datadoc(self.rng.choice((21, 58, 104, 260)))

    def run_query(self, cell: int) -> None:
        execution = self.rng.randint(10000, 99999)
        self.emit(EventType.API, _api("POST", "/query_execution/", {
            "query": "SELECT dt, COUNT(*) FROM user_events WHERE dt = '2024-01-01' GROUP BY dt",
            "engine_id": 1, "data_cell_id": cell, "originator": None}), (50, 400))
        self.emit(EventType.WEBSOCKET, {"route": "/query_execution/subscribe", "args": [execution],
                                        "kwargs": {}}, (50, 300))
        self.emit(EventType.API, _api("GET", "/query_execution/<int:query_execution_id>/",
                                      {"query_execution_id": execution}), (1000, 30000))

    def adhoc(self) -> None:
        path = f"/{ENVIRONMENT}/adhoc/"
        self.emit(EventType.CLICK, _click(self.rng.choice((f"/{ENVIRONMENT}/", path)), "LEFT_SIDEBAR",
                                          "ADHOC_BUTTON"))
        self.emit(EventType.VIEW, _view(path, "ADHOC_QUERY"), (100, 800))
        if self.rng.random() < 0.35:
            self.emit(EventType.CLICK, _click(path, "ADHOC_QUERY", "FORMAT_BUTTON"))
        self.run_query(cell=0)

    def search(self) -> None:
        path = f"/{ENVIRONMENT}/search/"
        tables = self.rng.random() < 0.7
        searches = TABLE_SEARCHES if tables else DATADOC_SEARCHES
        element = "TABLE_RESULT_ITEM" if tables else "DATADOC_RESULT_ITEM"
        text = self.rng.choice(sorted(searches))
        results, favourite = searches[text]
        self.emit(EventType.VIEW, _view(path, "SEARCH_MODAL"))
        self.emit(EventType.API, _api("GET", "/search/tables/" if tables else "/search/datadoc/",
                                      {"keywords": text, "limit": 10, "offset": 0}), (300, 3000))
        aux = {"nlp": False, "search": text, "results": results, "page": 1}
        self.emit(EventType.VIEW, _view(path, "SEARCH_MODAL", element, aux), (50, 300))
        if self.rng.random() < 0.75:
            pos = results.index(favourite) if self.rng.random() < 0.7 else self.rng.randrange(len(results))
            self.emit(EventType.CLICK, _click(path, "SEARCH_MODAL", element, {**aux, "pos": pos}))
            if not tables:
                self.datadoc(results[pos])

    def sidebar(self) -> None:
        element = self.rng.choice(SIDEBAR_CLICKS)
        self.emit(EventType.CLICK, _click(f"/{ENVIRONMENT}/", "LEFT_SIDEBAR", element))
        if element == "HOME_BUTTON":
            self.landing()


def synthetic_day(users: int = 300, start_ms: int = 0, seed: int = 20240101) -> Iterator[Event]:
    """The day's events from `start_ms` (ms since the epoch), in time order."""
    rng = random.Random(seed)
    events = []
    for uid in range(1, users + 1):
        visits = rng.choice((0, 1, 1, 2, 2, 3, 4, 6))
        for _ in range(visits):
            session = _Session(rng, uid, start_ms + rng.randrange(DAY_MS - 3600 * 1000))
            session.emit(EventType.CLICK, _click(f"/{ENVIRONMENT}/", "APP", aux={"action": "focus"}))
            session.landing()
            for _ in range(rng.randint(1, 8)):
                rng.choice((session.search, session.search, session.adhoc, session.sidebar,
                            session.open_datadoc))()
            events.extend(session.events)
    events.sort(key=lambda event: event[3])
    return iter(events)
