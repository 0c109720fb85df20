"""Fresh, varied Querybook-shaped event_data for the benchmarks.

Every call builds new objects (new dicts, lists, strings and floats) from a
seeded random.Random, so no encoder or logger profits from anything cached
on a repeated object, and two sides given the same seed get equal data in
distinct objects.  Shapes follow Querybook: VIEW/CLICK {path, component,
element, aux} from webapp/lib/analytics.ts (a search VIEW has aux {nlp,
search, results, page}); API {method, route, params} with params pruned as
BaseEventLogger does (strings over 128 characters cut to 128 + "..."); and
WEBSOCKET {route, args, kwargs}.  Most events carry a float (a duration, a
rank, a sample rate, a client time); "float-heavy" is a search VIEW whose
results carry relevance scores and timings.

    rng = random.Random(seed)
    data = KINDS["click"](rng)          # one event_data dict
    batch = mix(rng, 1000)              # [(kind, event_type_name, data)]
"""

import random

COMPONENTS = ["LANDING_PAGE", "SEARCH_MODAL", "DATADOC_QUERY_CELL", "DATADOC_PAGE",
              "BOARD_PAGE", "TABLE_DETAIL_VIEW", "QUERY_EDITOR", "ADHOC_QUERY_PAGE"]
ELEMENTS = ["FORMAT_BUTTON", "HOME_BUTTON", "RUN_QUERY_BUTTON", "SEARCH_RESULT_ITEM",
            "SHARE_BUTTON", "SCHEDULE_TOGGLE", "CELL_TITLE", "EXPORT_BUTTON", "TAB"]
WORDS = ["weekly", "active", "users", "revenue", "by", "region", "dashboard", "cohort",
         "retention", "funnel", "experiment", "signups", "über", "日次", "été", "🚀",
         "pins", "boards", "ads", "clicks", "impressions", "daily", "p99", "latency"]
TABLES = ["default.events", "prod.user_actions", "ads.impressions_daily", "core.pins",
          "metrics.latency_p99", "growth.signups_by_region"]
MAX_STR_PARAM_LENGTH = 128


def _words(rng, low, high):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _duration(rng):
    # JS performance.now() differences: full-precision doubles, sometimes rounded
    value = rng.random() * rng.choice((50.0, 800.0, 5000.0, 60000.0))
    return value if rng.random() < 0.7 else round(value, 1)


def _query(rng):
    table = rng.choice(TABLES)
    columns = ", ".join(rng.sample(["uid", "dt", "country", "count(*) AS n", "sum(spend)",
                                     "avg(latency_ms)", "event_type", "pin_id"], 4))
    return (f"SELECT {columns} FROM {table} WHERE dt >= '2024-0{rng.randint(1, 9)}-"
            f"{rng.randint(10, 28)}' AND country IN ('US', 'FR', 'JP') "
            f"AND title LIKE '%{_words(rng, 1, 3)}%' GROUP BY 1, 2, 3 ORDER BY n DESC "
            f"LIMIT {rng.choice((10, 100, 1000))}")


def _prune(params):
    """BaseEventLogger's pruning, as the logged event_data holds it."""
    out = {}
    for key, value in params.items():
        if isinstance(value, str) and len(value) > MAX_STR_PARAM_LENGTH:
            out[key] = value[:MAX_STR_PARAM_LENGTH] + "..."
        elif isinstance(value, dict):
            out[key] = _prune(value)
        else:
            out[key] = value
    return out


def click(rng):
    aux = {"cell_id": rng.randint(1, 10**7), "tab": rng.choice(("results", "query", "chart"))}
    if rng.random() < 0.8:
        aux["elapsed_ms"] = _duration(rng)
    if rng.random() < 0.4:
        aux["rank"] = rng.randint(0, 20) + rng.random()
    return {
        "path": f"/datadoc/{rng.randint(1, 10**5)}/",
        "component": rng.choice(COMPONENTS),
        "element": rng.choice(ELEMENTS),
        "aux": aux,
    }


def view(rng):
    if rng.random() < 0.5:  # a search that shows results
        aux = {
            "nlp": rng.random() < 0.2,
            "search": _words(rng, 1, 6),
            "results": [rng.randint(1, 10**6) for _ in range(rng.randint(0, 10))],
            "page": rng.randint(0, 4),
            "duration_ms": _duration(rng),
        }
        component = "SEARCH_MODAL"
    else:
        aux = {"title": _words(rng, 3, 30), "load_ms": _duration(rng),
               "is_new": rng.random() < 0.1}
        component = rng.choice(COMPONENTS)
    return {"path": rng.choice(("/", "/search/", f"/datadoc/{rng.randint(1, 10**5)}/",
                                f"/table/{rng.randint(1, 10**5)}/")),
            "component": component, "element": "", "aux": aux}


def api_post(rng):
    params = {
        "query": _query(rng) + " " * rng.randint(0, 4),  # over 128 characters: pruned
        "engine_id": rng.randint(1, 12),
        "data_cell_id": rng.randint(1, 10**6),
        "metadata": {"tags": rng.sample(["adhoc", "daily", "dash", "backfill", "ml"], 2),
                     "sample_rate": rng.choice((0.01, 0.1, 0.5, rng.random())),
                     "limit": None},
        "statement_ids": [rng.randint(10**4, 10**6) for _ in range(rng.randint(1, 5))],
    }
    return {"method": rng.choice(("POST", "PUT")),
            "route": rng.choice(("/query_execution/", "/datadoc/<int:doc_id>/cell/")),
            "params": _prune(params)}


def api_get(rng):
    route, params = rng.choice((
        ("/datadoc/<int:doc_id>/", lambda: {"doc_id": rng.randint(1, 10**5),
                                             "environment_id": rng.randint(1, 4)}),
        ("/search/tables/", lambda: {"keywords": _words(rng, 1, 4), "limit": 10,
                                     "filters": [["schema", rng.choice(("prod", "ads"))]],
                                     "sort_key": "importance_score"}),
        ("/board/<int:board_id>/", lambda: {"board_id": rng.randint(1, 5000)}),
        ("/query_execution/<int:query_execution_id>/", lambda: {
            "query_execution_id": rng.randint(1, 10**7), "include_results": rng.random() < 0.5}),
    ))
    return {"method": "GET", "route": route, "params": params()}


def websocket(rng):
    return {
        "route": rng.choice(("/datadoc/subscribe", "/datadoc/update_cell", "/query_execution/")),
        "args": [rng.randint(1, 10**5), f"{rng.getrandbits(128):032x}"],
        "kwargs": {"originator": f"sid-{rng.getrandbits(32):08x}",
                   "cursor": {"line": rng.randint(0, 400), "ch": rng.randint(0, 120)},
                   "client_time": 1.7e9 + rng.random() * 1e7,
                   "text": _words(rng, 0, 12)},
    }


def float_heavy(rng):
    """A search VIEW whose results carry relevance scores, plus timings."""
    count = rng.randint(10, 20)
    return {
        "path": "/search/",
        "component": "SEARCH_MODAL",
        "element": "",
        "aux": {
            "search": _words(rng, 1, 4),
            "results": [rng.randint(1, 10**6) for _ in range(count)],
            "scores": [rng.random() * 30 for _ in range(count)],
            "timings_ms": {"es": _duration(rng), "rank": _duration(rng),
                           "render": _duration(rng), "total": _duration(rng)},
            "page": rng.randint(0, 4),
        },
    }


def _scores(rng, digits):
    values = [rng.random() * 5000 for _ in range(20)]
    return {"path": "/search/", "component": "SEARCH_MODAL", "element": "",
            "aux": {"scores": values if digits is None else [round(v, digits) for v in values]}}


def floats_full(rng):
    """20 floats needing 15-17 significant digits (the worst case to print)."""
    return _scores(rng, None)


def floats_short(rng):
    """The same 20 floats rounded to one decimal."""
    return _scores(rng, 1)


# name -> (generator, EventType name, weight in the mix)
KINDS = {
    "click": (click, "CLICK", 4),
    "view": (view, "VIEW", 3),
    "api POST": (api_post, "API", 1),
    "api GET": (api_get, "API", 2),
    "websocket": (websocket, "WEBSOCKET", 1),
}
EXTRA_KINDS = {"float-heavy": (float_heavy, "VIEW", 0),
               "20 full floats": (floats_full, "VIEW", 0),
               "20 short floats": (floats_short, "VIEW", 0)}


def mix(rng, count):
    """[(kind, event type name, event_data)] drawn by KINDS' weights."""
    names = list(KINDS)
    weights = [KINDS[name][2] for name in names]
    out = []
    for name in rng.choices(names, weights, k=count):
        generate, event_type, _ = KINDS[name]
        out.append((name, event_type, generate(rng)))
    return out


def batch(kind, seed, count):
    """`count` fresh event_data dicts of one kind (or "mix")."""
    rng = random.Random(seed)
    if kind == "mix":
        return [data for _, _, data in mix(rng, count)]
    generate = (KINDS.get(kind) or EXTRA_KINDS[kind])[0]
    return [generate(rng) for _ in range(count)]
