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


@pytest.mark.parametrize("url", [
    "mysql://u:S3cr#et@host/db",
    "mysql://u:S3cr?et@host/db",
    "mysql://u:S3c/ret@host/db",
    "mysql+pymysql://u:a/b?c#d@host:3306/db?charset=utf8mb4",
    "mysql://u:S3cret@host:notaport/db",
])
def test_no_piece_of_the_password_in_errors(url, recwarn):
    """Issue 7, item 7: an unencoded '#', '?' or '/' in the password made
    urllib split it, and pieces of it reached the error message."""
    password = url.split("://", 1)[1].split(":", 1)[1].rsplit("@", 1)[0]
    with pytest.raises(ValueError) as raised:
        parse_database_url(url)
    message = str(raised.value)
    for piece in {password, *password.replace("#", "/").replace("?", "/").split("/")} - {""}:
        if len(piece) >= 2:
            assert piece not in message, (piece, message)
    assert all(password not in str(warning.message) for warning in recwarn)
    assert "***" in message


def test_percent_encoded_special_characters_still_work():
    parts = parse_database_url("mysql://u:S3cr%23e%3Ft%2F@host:3306/db")
    assert parts["password"] == "S3cr#e?t/"
    assert parts["host"] == "host" and parts["port"] == 3306 and parts["database"] == "db"


def test_replay_takes_the_url_from_a_file_and_warns_about_argv(db, tmp_path):
    """Issue 7, item 7: `replay --url URL` shows the password in ps."""
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    url_file = tmp_path / "url"
    url_file.write_text(db.url + "\n")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_CONN"}
    command = [sys.executable, "-m", "querybook_eventlog", "replay", "--spool-dir", str(tmp_path)]
    from_file = subprocess.run(command + ["--url-file", str(url_file)], cwd=repo, env=env,
                               capture_output=True, text=True, timeout=60)
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.startswith("replayed 0 events") and from_file.stderr == ""
    from_argv = subprocess.run(command + ["--url", db.url], cwd=repo, env=env,
                               capture_output=True, text=True, timeout=60)
    assert from_argv.returncode == 0, from_argv.stderr
    assert "shows its password to every user" in from_argv.stderr
