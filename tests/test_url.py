"""DATABASE_CONN parsing: SQLAlchemy-style URLs into connection parts."""

import warnings

import pytest

from querybook_eventlog._url import parse_database_url, redacted_url


@pytest.mark.parametrize(
    "scheme", ["mysql", "mysql+pymysql", "mysql+mysqldb", "mariadb", "MySQL+PyMySQL"]
)
def test_schemes_accepted(scheme):
    parts = parse_database_url(f"{scheme}://u:p@db.example:3307/querybook2")
    assert (parts["host"], parts["port"], parts["user"], parts["password"], parts["database"]) == (
        "db.example", 3307, "u", "p", "querybook2")


def test_percent_encoded_password_and_user():
    parts = parse_database_url("mysql+pymysql://qb%40x:p%40ss%3Aw%2Frd%25%3F@127.0.0.1/qb")
    assert parts["user"] == "qb@x"
    assert parts["password"] == "p@ss:w/rd%?"
    assert parts["port"] == 0  # the driver's default


def test_query_options():
    parts = parse_database_url(
        "mysql://u@localhost/qb?charset=utf8&unix_socket=/run/mysqld/mysqld.sock"
        "&ssl_ca=/ca.pem&ssl_cert=/c.pem&ssl_key=/k.pem&ssl_verify_cert=true")
    assert parts["charset"] == "utf8"
    assert parts["unix_socket"] == "/run/mysqld/mysqld.sock"
    assert (parts["ssl_ca"], parts["ssl_cert"], parts["ssl_key"]) == ("/ca.pem", "/c.pem", "/k.pem")
    assert parts["ssl_verify_cert"] is True
    assert parse_database_url("mysql://u@h/qb?ssl_verify_cert=0")["ssl_verify_cert"] is False
    assert parse_database_url("mysql://u@h/qb")["ssl_verify_cert"] is None
    assert parse_database_url("mysql://u@h/qb")["charset"] == "utf8mb4"


def test_unknown_option_ignored_with_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = parse_database_url("mysql://u@h/qb?binary_prefix=true")
    assert "binary_prefix" not in parts
    assert any("binary_prefix" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("postgresql://u:secret@h/qb", "unsupported database URL scheme"),
        ("mysql://u:secret@h:99999/qb", "Port out of range"),
        ("mysql://u:secret@h:port/qb", "malformed"),
        ("mysql://u:secret@/qb", "neither a host nor unix_socket"),
        ("mysql://u:secret@h/qb?ssl_verify_cert=maybe", "not a boolean"),
        ("mysql://u:secret@h/a/b", "may not contain"),
    ],
)
def test_malformed_urls_raise_without_password(url, fragment):
    with pytest.raises(ValueError) as info:
        parse_database_url(url)
    assert fragment in str(info.value)
    assert "secret" not in str(info.value)


def test_not_a_string():
    with pytest.raises(TypeError):
        parse_database_url(b"mysql://h/qb")


def test_redacted_url():
    assert redacted_url("mysql://u:secret@h:1/qb") == "mysql://u:***@h:1/qb"
    assert redacted_url("mysql://u@h/qb") == "mysql://u@h/qb"
