"""TLS options of DATABASE_CONN are honoured as PyMySQL and mysqlclient
honour them (issue 7, finding 8): private MariaDB servers with a certificate
signed by a test CA (one for 127.0.0.1, one for another host name), a user
that REQUIRES SSL (a login as that user proves the connection is encrypted)
and one that does not, and the plain shared server, which offers no TLS."""

import os
import shutil
import subprocess
import urllib.parse

import pytest
from mariadb_server import MariaDBServer, tool_environment

from querybook_eventlog import DBEventLogger

TLS_USER, TLS_PASSWORD = "tls_user", "tls-pw"
PLAIN_USER, PLAIN_PASSWORD = "plain_user", "plain-pw"


def openssl(*args, cwd):
    """The openssl command (Debian package openssl, which scripts/setup_env.sh
    installs): an error naming the package when it is missing, not a skip."""
    try:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                       env=tool_environment())
    except FileNotFoundError:
        raise RuntimeError("the TLS tests need the openssl command: apt-get install openssl "
                           "(scripts/setup_env.sh installs it)") from None


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem", "-out", f"{name}.pem",
            cwd=directory)
    return os.path.join(directory, f"{name}.pem")


def make_server_cert(directory, name, subject_alt_names):
    """A server certificate for `subject_alt_names`, signed by test-ca."""
    with open(os.path.join(directory, f"{name}.cnf"), "w") as config:
        config.write(f"subjectAltName={subject_alt_names}\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "test-ca.pem", "-CAkey",
            "test-ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.cnf",
            "-out", f"{name}.pem", cwd=directory)


def start_tls_server(directory, cert_name):
    server = MariaDBServer(extra_args=[
        f"--ssl-ca={os.path.join(directory, 'test-ca.pem')}",
        f"--ssl-cert={os.path.join(directory, cert_name + '.pem')}",
        f"--ssl-key={os.path.join(directory, cert_name + '-key.pem')}",
    ])
    try:
        server.start()
        server.sql(f"CREATE USER '{TLS_USER}'@'%' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE SSL; "
                   f"GRANT ALL ON querybook.* TO '{TLS_USER}'@'%'; "
                   f"CREATE USER '{PLAIN_USER}'@'%' IDENTIFIED BY '{PLAIN_PASSWORD}'; "
                   f"GRANT ALL ON querybook.* TO '{PLAIN_USER}'@'%';")
    except BaseException:
        server.cleanup()
        raise
    return server


@pytest.fixture(scope="module")
def tls_directory(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tls"))
    make_ca(directory, "test-ca")
    make_ca(directory, "other-ca")
    make_server_cert(directory, "server", "IP:127.0.0.1,DNS:localhost")
    make_server_cert(directory, "elsewhere", "DNS:db.elsewhere.invalid")
    return directory


@pytest.fixture(scope="module")
def tls_server(tls_directory):
    """TLS with a certificate for 127.0.0.1, signed by test-ca."""
    server = start_tls_server(tls_directory, "server")
    try:
        yield server, tls_directory
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def other_host_server(tls_directory):
    """TLS with a certificate signed by test-ca for db.elsewhere.invalid:
    the chain verifies, the host name (127.0.0.1) does not."""
    server = start_tls_server(tls_directory, "elsewhere")
    try:
        yield server, tls_directory
    finally:
        server.cleanup()


def tls_url(server, user=TLS_USER, password=TLS_PASSWORD, **options):
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"mysql://{user}:{password}@127.0.0.1:{server.port}/querybook?{query}"


def log_one(url, spool, marker, timeout=5):
    logger = DBEventLogger(url, spool_dir=spool, connect_timeout=3, backoff_initial=0.05,
                           backoff_max=0.2)
    logger.log(uid=1, event_type="VIEW", event_data={"tls": marker})
    flushed = logger.flush(timeout=timeout)
    stats = logger.stats()
    logger.close(timeout=0)
    return flushed, stats


def rows_with(server, marker):
    return server.sql(f"SELECT COUNT(*) FROM event_log WHERE "
                      f"JSON_VALUE(event_data, '$.tls') = '{marker}'")[0][0]


def test_verified_tls_connection_writes(tls_server, tmp_path):
    server, directory = tls_server
    url = tls_url(server, ssl_ca=os.path.join(directory, "test-ca.pem"), ssl_verify_cert="true")
    flushed, stats = log_one(url, str(tmp_path), "verified")
    assert flushed, stats["last_error"]
    assert rows_with(server, "verified") == "1"


def test_without_tls_options_a_require_ssl_user_is_refused(tls_server, tmp_path):
    server, _ = tls_server
    flushed, stats = log_one(tls_url(server), str(tmp_path), "plain")
    assert not flushed
    assert "1045" in stats["last_error"] and TLS_PASSWORD not in stats["last_error"]
    assert rows_with(server, "plain") == "0"


def test_certificate_from_another_ca_is_rejected_when_verifying(tls_server, tmp_path):
    server, directory = tls_server
    url = tls_url(server, ssl_ca=os.path.join(directory, "other-ca.pem"), ssl_verify_cert="true")
    flushed, stats = log_one(url, str(tmp_path), "wrong-ca")
    assert not flushed
    assert stats["last_error"]
    assert rows_with(server, "wrong-ca") == "0"


def test_client_certificate_options_are_used(tls_server, tmp_path):
    server, directory = tls_server
    url = tls_url(server, ssl_ca=os.path.join(directory, "test-ca.pem"),
                  ssl_cert=os.path.join(directory, "missing-cert.pem"),
                  ssl_key=os.path.join(directory, "missing-key.pem"))
    flushed, stats = log_one(url, str(tmp_path), "missing-client-cert")
    assert not flushed  # the client certificate files do not exist: no connection
    assert stats["last_error"]


# ---- finding 8: TLS as the drivers do it ------------------------------------


def ca(directory, name="test-ca"):
    return os.path.join(directory, f"{name}.pem")


def assert_refused(server, url, spool, marker, *fragments):
    flushed, stats = log_one(url, spool, marker, timeout=2)
    assert not flushed
    error = stats["last_error"] or ""
    for fragment in fragments:
        assert fragment in error, error
    assert rows_with(server, marker) == "0"
    return error


def assert_written(server, url, spool, marker):
    flushed, stats = log_one(url, spool, marker)
    assert flushed, stats["last_error"]
    assert rows_with(server, marker) == "1"


def test_ca_alone_verifies_the_host_name_as_pymysql_does(other_host_server, tmp_path):
    """Issue 7, finding 8: ?ssl_ca= accepted a certificate for another host."""
    server, directory = other_host_server
    assert_refused(server, tls_url(server, ssl_ca=ca(directory)), str(tmp_path), "ca-alone",
                   "2026")


def test_check_hostname_false_verifies_the_chain_only(other_host_server, tmp_path):
    server, directory = other_host_server
    url = tls_url(server, ssl_ca=ca(directory), ssl_check_hostname="false")
    assert_written(server, url, str(tmp_path), "no-hostname-check")


def test_verify_ca_accepts_a_certificate_for_another_host_signed_by_the_ca(other_host_server,
                                                                            tmp_path):
    server, directory = other_host_server
    url = tls_url(server, ssl_mode="VERIFY_CA", ssl_ca=ca(directory))
    assert_written(server, url, str(tmp_path), "verify-ca")


def test_verify_ca_refuses_a_certificate_from_another_ca(tls_server, tmp_path):
    server, directory = tls_server
    url = tls_url(server, ssl_mode="VERIFY_CA", ssl_ca=ca(directory, "other-ca"))
    assert_refused(server, url, str(tmp_path), "verify-ca-other-ca", "2026")


def test_verify_identity_refuses_a_certificate_for_another_host(other_host_server, tmp_path):
    server, directory = other_host_server
    url = tls_url(server, ssl_mode="verify_identity", ssl_ca=ca(directory))  # any case
    assert_refused(server, url, str(tmp_path), "verify-identity", "2026")


def test_verify_identity_accepts_the_right_host(tls_server, tmp_path):
    server, directory = tls_server
    url = tls_url(server, ssl_mode="VERIFY_IDENTITY", ssl_ca=ca(directory))
    assert_written(server, url, str(tmp_path), "verify-identity-ok")


def test_required_without_a_ca_encrypts_without_verifying(other_host_server, tmp_path):
    """TLS_USER REQUIRES SSL: the row landing proves the session was
    encrypted; the certificate (for another host, from a CA not given) was
    not verified."""
    server, _ = other_host_server
    assert_written(server, tls_url(server, ssl_mode="REQUIRED"), str(tmp_path), "required")


def test_required_with_a_ca_verifies_the_chain(tls_server, tmp_path):
    """Documented: Connector/C always checks a CA it is given."""
    server, directory = tls_server
    url = tls_url(server, ssl_mode="REQUIRED", ssl_ca=ca(directory, "other-ca"))
    assert_refused(server, url, str(tmp_path), "required-other-ca", "2026")


def test_preferred_uses_tls_when_the_server_offers_it(tls_server, tmp_path):
    server, _ = tls_server
    assert_written(server, tls_url(server, ssl_mode="preferred"), str(tmp_path), "preferred")


def test_disabled_never_uses_tls(tls_server, tmp_path):
    """The server offers TLS; DISABLED does not take it: the REQUIRE SSL user
    is refused (1045), the plain user writes."""
    server, _ = tls_server
    assert_refused(server, tls_url(server, ssl_mode="DISABLED"), str(tmp_path), "disabled-tls",
                   "1045")
    url = tls_url(server, user=PLAIN_USER, password=PLAIN_PASSWORD, ssl_mode="DISABLED")
    assert_written(server, url, str(tmp_path), "disabled-plain")


def plaintext_server(db):
    """The shared server, which offers no TLS (checked, or the tests below
    would prove nothing)."""
    assert db.sql("SHOW VARIABLES LIKE 'have_ssl'")[0][1] != "YES"
    return db


def plain_url(db, password=None, **options):
    query = "&".join(f"{key}={value}" for key, value in options.items())
    password = urllib.parse.quote(password or db.password, safe="")
    return f"mysql://{db.user}:{password}@127.0.0.1:{db.port}/{db.database}?{query}"


@pytest.mark.parametrize("options", [
    {"ssl_mode": "REQUIRED"},
    {"ssl_cert": "/nonexistent/client.pem"},  # TLS asked for by a client certificate alone
])
def test_required_against_a_server_without_tls_writes_nothing(db, tmp_path, options):
    """Issue 7, finding 8: with ssl_mode=REQUIRED the events went out in
    plaintext.  Now nothing is written, last_error says why."""
    server = plaintext_server(db)
    error = assert_refused(server, plain_url(server, **options), str(tmp_path), "req-plain",
                           "2026")
    assert "SSL" in error or "TLS" in error


def test_required_refuses_a_server_without_tls_before_authenticating(db, tmp_path):
    """A wrong password would be reported as 1045 had the client
    authenticated in plaintext; it is refused before that."""
    server = plaintext_server(db)
    error = assert_refused(server, plain_url(server, password="wrong", ssl_mode="REQUIRED"),
                           str(tmp_path), "req-preauth", "2026")
    assert "1045" not in error


def test_verify_ca_against_a_server_without_tls_writes_nothing(db, tls_directory, tmp_path):
    server = plaintext_server(db)
    url = plain_url(server, ssl_mode="VERIFY_CA", ssl_ca=ca(tls_directory))
    assert_refused(server, url, str(tmp_path), "verify-ca-plain", "2026")


def test_preferred_falls_back_to_plaintext(db, tmp_path):
    """Documented: PREFERRED is the only mode that may end in plaintext."""
    server = plaintext_server(db)
    assert_written(server, plain_url(server, ssl_mode="PREFERRED"), str(tmp_path), "pref-plain")


def test_capath_is_used(tls_server, tmp_path):
    server, directory = tls_server
    capath = tmp_path / "capath"
    capath.mkdir()
    shutil.copy(ca(directory), capath / "test-ca.pem")
    openssl("rehash", str(capath), cwd=str(capath))
    url = tls_url(server, ssl_capath=str(capath))
    assert_written(server, url, str(tmp_path), "capath")
    other = tmp_path / "other-capath"
    other.mkdir()
    shutil.copy(ca(directory, "other-ca"), other / "other-ca.pem")
    openssl("rehash", str(other), cwd=str(other))
    assert_refused(server, tls_url(server, ssl_capath=str(other)), str(tmp_path),
                   "capath-other", "2026")


def test_cipher_is_used(tls_server, tmp_path):
    server, directory = tls_server
    url = tls_url(server, ssl_ca=ca(directory), ssl_cipher="NO-SUCH-CIPHER")
    assert_refused(server, url, str(tmp_path), "cipher-bogus", "2026")
    url = tls_url(server, ssl_ca=ca(directory), ssl_cipher="ECDHE-RSA-AES128-GCM-SHA256")
    assert_written(server, url, str(tmp_path), "cipher-ok")


@pytest.mark.parametrize("query, fragment", [
    ("ssl_crl=/crl.pem", "'ssl_crl' is not supported"),
    ("ssl=true", "'ssl' is not supported"),
    ("tls_version=TLSv1.3", "'tls_version' is not supported"),
    ("ssl_mode=STRICT", "is not one of"),
    ("ssl_mode=DISABLED&ssl_ca=/ca.pem", "DISABLED never uses TLS"),
    ("ssl_mode=REQUIRED&ssl_check_hostname=true", "does not verify"),
    ("ssl_mode=VERIFY_CA", "needs ssl_ca or ssl_capath"),
    ("ssl_ca=/ca.pem&ssl_verify_cert=false", "ssl_verify_cert=false"),
])
def test_unsupported_tls_options_fail_at_construction(tmp_path, query, fragment):
    url = f"mysql://u:secret@127.0.0.1:1/querybook?{query}"
    with pytest.raises(ValueError, match=fragment) as raised:
        DBEventLogger(url, spool_dir=str(tmp_path))
    assert "secret" not in str(raised.value)


def test_a_hand_made_parts_dict_with_an_unknown_mode_is_refused(tmp_path):
    """The C core checks too: _replay_spool takes a parts dict directly."""
    from querybook_eventlog import _core
    from querybook_eventlog._url import parse_database_url

    parts = parse_database_url("mysql://u:secret@127.0.0.1:1/querybook")
    with pytest.raises(ValueError, match="ssl_mode must be one of DISABLED"):
        _core._replay_spool(dict(parts, ssl_mode="verify_identity"), str(tmp_path), "event_log")
