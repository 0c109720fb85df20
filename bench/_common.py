"""What the database benches share (bench_db.py, bench_galera.py): the
import path, --quick, and fresh Querybook-shaped events.

Import it before anything of the repository: it puts the repository (the
in-place build of querybook_eventlog), bench/ (qb_events) and tests/ (the
private servers) first on sys.path.  Python already has bench/ on the path
when it runs a bench script, so `import _common` itself needs nothing.
"""

import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, HERE, os.path.join(REPO, "tests")]

import qb_events  # noqa: E402

QUICK = "--quick" in sys.argv


def fresh_events(seed, count):
    """[(uid 1..100, event type name, event_data)], new objects on every call:
    the same seed gives equal events in distinct objects."""
    rng = random.Random(seed)
    return [(rng.randint(1, 100), event_type, data)
            for _, event_type, data in qb_events.mix(rng, count)]
