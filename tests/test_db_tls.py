"""TLS options of DATABASE_CONN are honoured: a private MariaDB with a
certificate signed by a test CA, and a user that REQUIRES SSL."""

import os
import subprocess

import pytest
from mariadb_server import MariaDBServer, tool_environment

from querybook_eventlog import DBEventLogger

TLS_USER, TLS_PASSWORD = "tls_user", "tls-pw"


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


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tls"))
    ca = make_ca(directory, "test-ca")
    make_ca(directory, "other-ca")
    with open(os.path.join(directory, "san.cnf"), "w") as config:
        config.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server-key.pem", "-out", "server.csr", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "test-ca.pem", "-CAkey",
            "test-ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", "san.cnf",
            "-out", "server.pem", cwd=directory)
    server = MariaDBServer(extra_args=[
        f"--ssl-ca={ca}",
        f"--ssl-cert={os.path.join(directory, 'server.pem')}",
        f"--ssl-key={os.path.join(directory, 'server-key.pem')}",
    ])
    try:
        server.start()
        server.sql(f"CREATE USER '{TLS_USER}'@'%' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE SSL; "
                   f"GRANT ALL ON querybook.* TO '{TLS_USER}'@'%';")
        yield server, directory
    finally:
        server.cleanup()


def tls_url(server, **options):
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"mysql://{TLS_USER}:{TLS_PASSWORD}@127.0.0.1:{server.port}/querybook?{query}"


def log_one(url, spool, marker):
    logger = DBEventLogger(url, spool_dir=spool, connect_timeout=3, backoff_initial=0.05,
                           backoff_max=0.2)
    logger.log(uid=1, event_type="VIEW", event_data={"tls": marker})
    flushed = logger.flush(timeout=5)
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
