import functools
import os
from contextlib import contextmanager

from flask import g, has_request_context
from sqlalchemy import create_engine, event
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.declarative import declarative_base
from sqlalchemy.orm import scoped_session, sessionmaker

from env import QuerybookSettings
from lib.logger import get_logger

try:
    from greenlet import getcurrent as _get_ident
except ImportError:
    from threading import get_ident as _get_ident

LOG = get_logger(__file__)

_engine = None
_session = None


def get_db_engine(
    conn_string=QuerybookSettings.DATABASE_CONN,
    pool_size=QuerybookSettings.DATABASE_POOL_SIZE,
    pool_recycle=QuerybookSettings.DATABASE_POOL_RECYCLE,
):
    global _engine
    if not _engine:
        _engine = create_engine(
            conn_string,
            pool_size=pool_size,
            pool_recycle=pool_recycle,
            pool_pre_ping=True,
            encoding="utf-8",
        )

        # A pooled connection must not cross a fork (uwsgi/celery workers).
        @event.listens_for(_engine, "connect")
        def connect(dbapi_connection, connection_record):
            connection_record.info["pid"] = os.getpid()

        @event.listens_for(_engine, "checkout")
        def checkout(dbapi_connection, connection_record, connection_proxy):
            if connection_record.info["pid"] != os.getpid():
                connection_record.connection = connection_proxy.connection = None
                raise DisconnectionError("connection belongs to another process")

    return _engine


def get_session(scopefunc=None):
    global _session
    if not _session:
        _session = scoped_session(sessionmaker(bind=get_db_engine()), scopefunc=scopefunc)
    return _session


def get_flask_db_session():
    if "database_session" not in g:
        g.database_session = get_session(scopefunc=_get_ident)()
    return g.database_session


def with_session(fn):
    """Passes session=: the request's own in a request, else a new one closed afterwards."""

    @functools.wraps(fn)
    def func(*args, **kwargs):
        if kwargs.get("session"):
            return fn(*args, **kwargs)
        if has_request_context():
            kwargs["session"] = get_flask_db_session()
            return fn(*args, **kwargs)
        session = kwargs["session"] = get_session()()
        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError:
            session.rollback()
            LOG.error("database error", exc_info=True)
            raise
        finally:
            get_session().remove()

    return func


@contextmanager
def DBSession():
    if has_request_context():
        yield get_flask_db_session()
        return
    session = get_session()()
    try:
        yield session
    except SQLAlchemyError:
        session.rollback()
        raise
    finally:
        get_session().remove()


Base = declarative_base()
