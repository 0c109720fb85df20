"""The one adoption edit: what Querybook's files become.

``adopt(root)`` (also ``python -m querybook_eventlog adopt ROOT``) applies it to
a Querybook checkout:

1. the files of ``querybook/server/lib/event_logger/`` become thin
   re-exports of ``querybook_eventlog.querybook`` (``ADOPTED_FILES``);
2. ``querybook/server/models/event_log.py`` gains two lines declaring the
   marker table on the models' metadata (``MODEL_LINES``);
3. an alembic migration creating the marker table is added after the current
   head of ``querybook/migrations/versions/``.

It is idempotent: running it again changes nothing.
"""

from __future__ import annotations

import datetime
import os
import re
from typing import Dict, List, Optional

from .schema import BATCH_ID_LENGTH, MIGRATION_TEMPLATE

EVENT_LOGGER_DIR = os.path.join("querybook", "server", "lib", "event_logger")
MODEL_FILE = os.path.join("querybook", "server", "models", "event_log.py")
VERSIONS_DIR = os.path.join("querybook", "migrations", "versions")
MIGRATION_REVISION = "qbel0marker1"
ADOPTED_MARK = "# Adopted: querybook_eventlog"

_PACKAGE_FILE = f'''{ADOPTED_MARK} (its README: "Using it from Querybook").
from querybook_eventlog.querybook.facade import *  # noqa: F401,F403
from querybook_eventlog.querybook.facade import __getattr__  # noqa: F401
'''


def _alias_file(module: str) -> str:
    # The module object itself, so that patching its names patches ours.
    return f'''{ADOPTED_MARK} (its README: "Using it from Querybook").
import sys

import {module} as _adopted

sys.modules[__name__] = _adopted
'''


# Path under querybook/server/lib/event_logger/ -> its new text.
ADOPTED_FILES: Dict[str, str] = {
    "__init__.py": _PACKAGE_FILE,
    "base_event_logger.py": _alias_file("querybook_eventlog.querybook.base_event_logger"),
    "all_event_loggers.py": _alias_file("querybook_eventlog.querybook.all_event_loggers"),
    os.path.join("loggers", "console_event_logger.py"):
        _alias_file("querybook_eventlog.querybook.loggers.console_event_logger"),
    os.path.join("loggers", "db_event_logger.py"):
        _alias_file("querybook_eventlog.querybook.loggers.db_event_logger"),
    os.path.join("loggers", "null_event_logger.py"):
        _alias_file("querybook_eventlog.querybook.loggers.null_event_logger"),
}

MODEL_LINES = f'''
{ADOPTED_MARK}: its batch-marker table, so that alembic autogenerate keeps it.
from querybook_eventlog.querybook.schema import marker_table  # noqa: E402

EventLogBatch = marker_table(Base.metadata)
'''

_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


def migration_heads(versions_dir: str) -> List[str]:
    """The head revisions of an alembic versions directory (read, not imported)."""
    revisions, parents = set(), set()
    for name in sorted(os.listdir(versions_dir)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(versions_dir, name), encoding="utf-8") as source:
            text = source.read()
        revision = _REVISION.search(text)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = _DOWN_REVISION.search(text)
        if down:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return sorted(revisions - parents)


def migration_text(down_revision: Optional[str], now: Optional[datetime.datetime] = None) -> str:
    now = now or datetime.datetime.now()
    return MIGRATION_TEMPLATE.format(
        revision=MIGRATION_REVISION,
        down_revision=down_revision or "",
        down_revision_literal=repr(down_revision),
        create_date=now.strftime("%Y-%m-%d %H:%M:%S.%f"),
        batch_id_length=BATCH_ID_LENGTH,
    )


def adopt(root: str) -> List[str]:
    """Apply the adoption edit to the Querybook checkout at `root`; the paths written."""
    server_lib = os.path.join(root, EVENT_LOGGER_DIR)
    if not os.path.isdir(server_lib):
        raise FileNotFoundError(f"{server_lib} not found: is {root} a Querybook checkout?")
    written: List[str] = []
    for relative, text in ADOPTED_FILES.items():
        path = os.path.join(server_lib, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if _read(path) != text:
            _write(path, text)
            written.append(path)
    model = os.path.join(root, MODEL_FILE)
    model_text = _read(model)
    if model_text is None:
        raise FileNotFoundError(f"{model} not found: is {root} a Querybook checkout?")
    if ADOPTED_MARK not in model_text:
        _write(model, model_text.rstrip("\n") + "\n" + MODEL_LINES)
        written.append(model)
    versions = os.path.join(root, VERSIONS_DIR)
    if os.path.isdir(versions):
        migration = os.path.join(versions, f"{MIGRATION_REVISION}_add_event_log_qbel_batches.py")
        if not os.path.exists(migration):
            heads = migration_heads(versions)
            if len(heads) > 1:
                raise RuntimeError(f"alembic has several heads ({', '.join(heads)}); merge them first")
            _write(migration, migration_text(heads[0] if heads else None))
            written.append(migration)
    return written


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as source:
            return source.read()
    except FileNotFoundError:
        return None


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as target:
        target.write(text)
