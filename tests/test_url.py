"""DATABASE_CONN parsing: SQLAlchemy-style URLs into connection parts."""

import re
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
        "mysql://u@localhost/qb?charset=utf8mb4&unix_socket=/run/mysqld/mysqld.sock"
        "&ssl_ca=/ca.pem&ssl_capath=/cas&ssl_cert=/c.pem&ssl_key=/k.pem&ssl_cipher=AES256-SHA"
        "&ssl_verify_cert=true")
    assert parts["charset"] == "utf8mb4"
    assert parts["unix_socket"] == "/run/mysqld/mysqld.sock"
    assert (parts["ssl_ca"], parts["ssl_capath"], parts["ssl_cert"], parts["ssl_key"],
            parts["ssl_cipher"]) == ("/ca.pem", "/cas", "/c.pem", "/k.pem", "AES256-SHA")
    assert parts["ssl_mode"] == "VERIFY_IDENTITY"
    plain = parse_database_url("mysql://u@h/qb")
    assert (plain["ssl_mode"], plain["charset"], plain["ssl_ca"]) == ("DISABLED", "utf8mb4", None)
    assert "ssl_verify_cert" not in plain and "ssl_check_hostname" not in plain


# ---- TLS: every way of asking resolved into one ssl_mode (issue 7, finding 8)

@pytest.mark.parametrize("query, mode", [
    ("", "DISABLED"),
    ("ssl_verify_cert=false", "DISABLED"),
    ("ssl_check_hostname=false", "DISABLED"),
    # PyMySQL: a CA means CERT_REQUIRED and check_hostname=True
    ("ssl_ca=/ca.pem", "VERIFY_IDENTITY"),
    ("ssl_capath=/cas", "VERIFY_IDENTITY"),
    ("ssl_ca=/ca.pem&ssl_verify_cert=true", "VERIFY_IDENTITY"),
    ("ssl_ca=/ca.pem&ssl_check_hostname=false", "VERIFY_CA"),
    ("ssl_ca=/ca.pem&ssl_check_hostname=true", "VERIFY_IDENTITY"),
    # verification without a CA: the system CAs
    ("ssl_verify_cert=true", "VERIFY_IDENTITY"),
    ("ssl_check_hostname=true", "VERIFY_IDENTITY"),
    # a client certificate or a cipher alone: encrypted, not verified, never plaintext
    ("ssl_cert=/c.pem&ssl_key=/k.pem", "REQUIRED"),
    ("ssl_cipher=AES256-SHA", "REQUIRED"),
    ("ssl_cert=/c.pem&ssl_verify_cert=false", "REQUIRED"),
    # explicit modes, any case (as mysqlclient)
    ("ssl_mode=disabled", "DISABLED"),
    ("ssl_mode=Preferred", "PREFERRED"),
    ("ssl_mode=PREFERRED&ssl_cert=/c.pem&ssl_key=/k.pem", "PREFERRED"),
    ("ssl_mode=REQUIRED", "REQUIRED"),
    ("ssl_mode=REQUIRED&ssl_ca=/ca.pem", "REQUIRED"),
    ("ssl_mode=REQUIRED&ssl_check_hostname=false&ssl_verify_cert=false", "REQUIRED"),
    ("ssl_mode=verify_ca&ssl_ca=/ca.pem", "VERIFY_CA"),
    ("ssl_mode=VERIFY_CA&ssl_capath=/cas&ssl_check_hostname=false", "VERIFY_CA"),
    ("ssl_mode=VERIFY_IDENTITY", "VERIFY_IDENTITY"),
    ("ssl_mode=VERIFY_IDENTITY&ssl_ca=/ca.pem&ssl_verify_cert=true&ssl_check_hostname=1",
     "VERIFY_IDENTITY"),
])
def test_tls_mode_resolution(query, mode):
    assert parse_database_url(f"mysql://u@h/qb?{query}")["ssl_mode"] == mode


@pytest.mark.parametrize("query, fragment", [
    ("ssl_mode=DISABLED&ssl_ca=/ca.pem", "DISABLED never uses TLS"),
    ("ssl_mode=DISABLED&ssl_cert=/c.pem", "DISABLED never uses TLS"),
    ("ssl_mode=DISABLED&ssl_verify_cert=true", "DISABLED never uses TLS"),
    ("ssl_mode=PREFERRED&ssl_ca=/ca.pem", "PREFERRED does not verify"),
    ("ssl_mode=PREFERRED&ssl_check_hostname=true", "PREFERRED does not verify"),
    ("ssl_mode=REQUIRED&ssl_verify_cert=true", "REQUIRED does not verify"),
    ("ssl_mode=VERIFY_CA", "needs ssl_ca or ssl_capath"),
    ("ssl_mode=VERIFY_CA&ssl_ca=/ca.pem&ssl_check_hostname=true", "does not check the host"),
    ("ssl_mode=VERIFY_CA&ssl_ca=/ca.pem&ssl_verify_cert=false", "ssl_verify_cert=false"),
    ("ssl_mode=VERIFY_IDENTITY&ssl_check_hostname=false", "use ssl_mode=VERIFY_CA"),
    ("ssl_ca=/ca.pem&ssl_verify_cert=false", "drop one of them"),
    ("ssl_verify_cert=false&ssl_check_hostname=true", "ssl_check_hostname=true"),
    ("ssl_verify_cert=true&ssl_check_hostname=false", "needs ssl_ca or ssl_capath"),
    ("ssl_mode=STRICT", "is not one of DISABLED"),
    ("ssl_mode=", "is not one of DISABLED"),
    ("ssl_check_hostname=perhaps", "not a boolean"),
    ("ssl_ca=", "ssl_ca is empty"),
    ("ssl_mode=REQUIRED&ssl_mode=DISABLED", "given twice"),
    ("ssl_ca=/a.pem&ssl_ca=/b.pem", "given twice"),
    ("ssl_crl=/crl.pem", "'ssl_crl' is not supported"),
    ("ssl_verify_identity=true", "'ssl_verify_identity' is not supported"),
    ("ssl_disabled=true", "'ssl_disabled' is not supported"),
    ("ssl=true", "'ssl' is not supported"),
    ("SSL_CA=/ca.pem", "'SSL_CA' is not supported"),
    ("tls_version=TLSv1.3", "'tls_version' is not supported"),
])
def test_unsupported_or_contradictory_tls_options_raise(query, fragment):
    with pytest.raises(ValueError, match=fragment) as raised:
        parse_database_url(f"mysql://u:secret@h/qb?{query}")
    assert "secret" not in str(raised.value)


# ---- charset: the connection is always utf8mb4 (issue 7, finding 10) ---------

@pytest.mark.parametrize("charset", ["utf8mb4", "UTF8MB4", "utf8", "utf8mb3", "latin1", ""])
def test_accepted_charsets_all_mean_utf8mb4(charset):
    assert parse_database_url(f"mysql://u@h/qb?charset={charset}")["charset"] == "utf8mb4"


@pytest.mark.parametrize("charset", ["ascii", "binary", "sjis", "utf16", "utf8mb4_bin", "foo"])
def test_other_charsets_raise(charset):
    with pytest.raises(ValueError, match="connection is always utf8mb4") as raised:
        parse_database_url(f"mysql://u:secret@h/qb?charset={charset}")
    assert "secret" not in str(raised.value)


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


# ---- several hosts (a Galera cluster): the spellings, all without a server ----

@pytest.mark.parametrize("url", [
    "mysql+pymysql://u:p%40w@db1:3307,db2:3308,db3/qb",
    "mysql://u:p%40w@/qb?host=db1:3307&host=db2:3308&host=db3",  # SQLAlchemy's spelling
    "mysql://u:p%40w@/qb?host=db1:3307,db2:3308,db3:3306",
    "mariadb://u:p%40w@db1%3A3307%2Cdb2%3A3308%2Cdb3/qb",  # percent-encoded list
])
def test_a_host_list_in_every_spelling_means_the_same(url):
    parts = parse_database_url(url)
    assert parts["hosts"] == (("db1", 3307), ("db2", 3308), ("db3", 3306))
    # the C core gets Connector/C's spelling, every port given
    assert (parts["host"], parts["port"]) == ("db1:3307,db2:3308,db3:3306", 0)
    assert (parts["user"], parts["password"], parts["database"]) == ("u", "p@w", "qb")


def test_a_single_host_keeps_host_and_port_and_lists_itself():
    parts = parse_database_url("mysql://u:pw@db1:3310/qb")
    assert (parts["host"], parts["port"], parts["hosts"]) == ("db1", 3310, (("db1", 3310),))
    parts = parse_database_url("mysql://u:pw@/qb?host=db9")  # one ?host= is one host
    assert (parts["host"], parts["port"], parts["hosts"]) == ("db9", 3306, (("db9", 3306),))
    socket_only = parse_database_url("mysql://u@/qb?unix_socket=/run/m.sock")
    assert socket_only["hosts"] == () and socket_only["host"] is None


def test_ipv6_hosts_in_a_list_keep_their_brackets_for_connector_c():
    parts = parse_database_url("mysql://u:pw@[::1]:3307,[fe80::2],db3:1/qb?charset=utf8mb4")
    assert parts["hosts"] == (("::1", 3307), ("fe80::2", 3306), ("db3", 1))
    assert parts["host"] == "[::1]:3307,[fe80::2]:3306,db3:1"


@pytest.mark.parametrize("url, fragment", [
    ("mysql://u:secret@db1:1,db1:1/qb", "listed twice"),
    ("mysql://u:secret@db1:1,,db2/qb", "empty host"),
    ("mysql://u:secret@db1:1,db2:0/qb", "is not 1..65535"),
    ("mysql://u:secret@db1:1,db2:99999/qb", "is not 1..65535"),
    ("mysql://u:secret@db1:1,db2:x/qb", "is not 1..65535"),
    ("mysql://u:secret@db1,::1/qb", "needs brackets"),
    ("mysql://u:secret@db1,[::1/qb", "malformed host"),
    ("mysql://u:secret@db1,db2/qb?unix_socket=/s.sock", "host list and unix_socket"),
    ("mysql://u:secret@db1/qb?host=db2", "both before the path and in ?host="),
    ("mysql://u:secret@db1,db2/qb?host=db3", "both before the path and in ?host="),
])
def test_malformed_host_lists_raise_without_the_password(url, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)) as raised:
        parse_database_url(url)
    assert "secret" not in str(raised.value)


def test_a_host_list_with_an_unencoded_password_character_is_still_refused():
    with pytest.raises(ValueError, match="percent-encode") as raised:
        parse_database_url("mysql://u:se/cret@db1:1,db2:2/qb")
    assert "se/cret" not in str(raised.value)
