"""Parse Querybook's DATABASE_CONN (an SQLAlchemy URL) into connection parts.

Only the standard library is used; the C core receives plain values.  The
password is returned for the connection only: never print the result.
"""

from __future__ import annotations

import re
import urllib.parse
import warnings
from typing import Any, Dict, List, Optional, Tuple

SUPPORTED_SCHEMES = ("mysql", "mysql+pymysql", "mysql+mysqldb", "mysql+mysqlconnector",
                     "mariadb", "mariadb+pymysql", "mariadb+mysqldb", "mariadb+mariadbconnector")
SUPPORTED_OPTIONS = ("charset", "unix_socket", "host", "ssl_mode", "ssl_ca", "ssl_capath", "ssl_cert",
                     "ssl_key", "ssl_cipher", "ssl_verify_cert", "ssl_check_hostname")
SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
SSL_VALUE_OPTIONS = ("ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_cipher")  # passed on
# The connection is always utf8mb4.  These names are accepted because every
# character they can carry is carried by utf8mb4 as the same text: the data
# lands as they would have stored it, and what they could not store (an
# emoji through utf8, a kanji through latin1) lands too.
ACCEPTED_CHARSETS = ("utf8mb4", "utf8", "utf8mb3", "latin1")
TRUE_WORDS = ("1", "true", "yes", "on")
DEFAULT_PORT = 3306
# A stand-in host put in place of a host list so urllib parses the rest.
_HOST_LIST_PLACEHOLDER = "qbel-host-list.invalid"
FALSE_WORDS = ("0", "false", "no", "off")


def _redacted(url: str) -> str:
    """The URL with everything that may be the password replaced by ***.

    Textual, not urllib's split: a password with an unencoded '#', '?' or '/'
    makes urllib split it into fragment, query or path.  Everything between
    the user's ':' and the last '@' is hidden (over-hiding, never under-).
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "<not a URL>"
    at = rest.rfind("@")
    if at < 0:
        return url  # no credentials at all
    user, colon, _ = rest[:at].partition(":")
    if not colon:
        return url
    if any(mark in user for mark in "/?#"):
        return f"{scheme}://***@{rest[at + 1:]}"
    return f"{scheme}://{user}:***@{rest[at + 1:]}"


def _unencoded_credentials(url: str) -> bool:
    """Whether '/', '?' or '#' stands before the URL's last '@' while that '@'
    lies outside the part urllib takes as user:password@host -- an unencoded
    character in the password (or user)."""
    rest = url.partition("://")[2]
    at = rest.rfind("@")
    if at < 0:
        return False
    cut = min((rest.find(mark) for mark in "/?#" if mark in rest), default=len(rest))
    return cut < at and ":" in rest[:at] and "@" not in rest[:cut]


def _parse_bool(name: str, value: str, url: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"database URL option {name}={value!r} is not a boolean in {_redacted(url)}")


def _charset(value: Optional[str], url: str) -> str:
    if value is None or value.strip() == "" or value.strip().lower() in ACCEPTED_CHARSETS:
        return "utf8mb4"
    raise ValueError(
        f"database URL option charset={value!r} is not supported in {_redacted(url)}: the "
        f"connection is always utf8mb4; use charset=utf8mb4 (also accepted, meaning the same: "
        f"{', '.join(ACCEPTED_CHARSETS[1:])})")


def _tls_conflict(url: str, detail: str) -> ValueError:
    return ValueError(f"database URL TLS options conflict in {_redacted(url)}: {detail}")


def _explicit_tls_mode(mode: str, has_settings: bool, has_ca: bool, verify: Optional[bool],
                       check_hostname: Optional[bool], url: str) -> str:
    """Check the other options against an explicit ssl_mode."""
    if mode == "DISABLED" and (has_settings or verify or check_hostname):
        raise _tls_conflict(url, "ssl_mode=DISABLED never uses TLS, yet TLS options are given")
    if mode in ("PREFERRED", "REQUIRED") and (verify or check_hostname):
        raise _tls_conflict(url, f"ssl_mode={mode} does not verify the server; use "
                            "ssl_mode=VERIFY_CA or VERIFY_IDENTITY")
    if mode == "PREFERRED" and has_ca:
        raise _tls_conflict(url, "ssl_mode=PREFERRED does not verify the server, so ssl_ca and "
                            "ssl_capath mean nothing; use ssl_mode=VERIFY_CA or VERIFY_IDENTITY")
    if mode in ("VERIFY_CA", "VERIFY_IDENTITY") and verify is False:
        raise _tls_conflict(url, f"ssl_mode={mode} verifies the certificate, "
                            "ssl_verify_cert=false does not")
    if mode == "VERIFY_CA" and check_hostname:
        raise _tls_conflict(url, "ssl_mode=VERIFY_CA does not check the host name; use "
                            "ssl_mode=VERIFY_IDENTITY")
    if mode == "VERIFY_IDENTITY" and check_hostname is False:
        raise _tls_conflict(url, "ssl_mode=VERIFY_IDENTITY checks the host name, "
                            "ssl_check_hostname=false does not; use ssl_mode=VERIFY_CA")
    if mode == "VERIFY_CA" and not has_ca:
        raise _tls_conflict(url, "ssl_mode=VERIFY_CA needs ssl_ca or ssl_capath")
    return mode


def _implied_tls_mode(has_settings: bool, has_ca: bool, verify: Optional[bool],
                      check_hostname: Optional[bool], url: str) -> str:
    """The mode the PyMySQL-style options imply: a CA means verify the
    certificate and the host name (ssl_check_hostname=false: not the name)."""
    if not (verify or check_hostname or has_settings):
        return "DISABLED"
    if verify is False:
        if has_ca:
            raise _tls_conflict(url, "ssl_verify_cert=false with ssl_ca or ssl_capath (a "
                                "given CA is always checked); drop one of them")
        if check_hostname:
            raise _tls_conflict(url, "ssl_check_hostname=true with ssl_verify_cert=false")
        return "REQUIRED"
    if not (verify or has_ca or check_hostname):
        return "REQUIRED"  # only ssl_cert, ssl_key or ssl_cipher: encrypt, do not verify
    if check_hostname is False:
        if not has_ca:
            raise _tls_conflict(url, "verifying the certificate without checking the host "
                                "name needs ssl_ca or ssl_capath")
        return "VERIFY_CA"
    return "VERIFY_IDENTITY"


def _tls_settings(options: Dict[str, str], url: str) -> Dict[str, Any]:
    """ssl_mode resolved from every TLS option, and the files to use.

    The C core applies the mode alone; the other ways of saying it
    (ssl_verify_cert, ssl_check_hostname, a bare ssl_ca) are settled here.
    """
    for name in SSL_VALUE_OPTIONS:
        if name in options and not options[name]:
            raise ValueError(f"database URL option {name} is empty in {_redacted(url)}")
    verify = options.get("ssl_verify_cert")
    verify_flag = None if verify is None else _parse_bool("ssl_verify_cert", verify, url)
    check = options.get("ssl_check_hostname")
    check_flag = None if check is None else _parse_bool("ssl_check_hostname", check, url)
    has_ca = bool(options.get("ssl_ca") or options.get("ssl_capath"))
    has_settings = any(options.get(name) for name in SSL_VALUE_OPTIONS)
    mode = options.get("ssl_mode")
    if mode is None:
        resolved = _implied_tls_mode(has_settings, has_ca, verify_flag, check_flag, url)
    elif mode.strip().upper() in SSL_MODES:
        resolved = _explicit_tls_mode(mode.strip().upper(), has_settings, has_ca, verify_flag,
                                      check_flag, url)
    else:
        raise ValueError(f"database URL option ssl_mode={mode!r} is not one of "
                         f"{', '.join(SSL_MODES)} in {_redacted(url)}")
    settings: Dict[str, Any] = {"ssl_mode": resolved}
    for name in SSL_VALUE_OPTIONS:
        settings[name] = options.get(name)
    return settings


def _host_port(entry: str, url: str) -> Tuple[str, int]:
    """One "host", "host:port", "[v6]" or "[v6]:port" of a host list."""
    text = urllib.parse.unquote(entry.strip())
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or (close + 1 < len(text) and text[close + 1] != ":"):
            raise ValueError(f"malformed host {text!r} in the host list of {_redacted(url)}")
        host, port_text = text[1:close], text[close + 2:]
    elif text.count(":") > 1:
        raise ValueError(f"an IPv6 host in a host list needs brackets ([{text}]:3306) in "
                         f"{_redacted(url)}")
    else:
        host, _, port_text = text.partition(":")
    if not host or any(mark in host for mark in "/?#@,[] "):
        raise ValueError(f"malformed host {text!r} in the host list of {_redacted(url)}")
    if port_text == "":
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} of host {host!r} is not 1..65535 in "
                         f"{_redacted(url)}")
    return host, int(port_text)


def _host_list(entries: List[str], url: str) -> Tuple[Tuple[str, int], ...]:
    if any(not entry.strip() for entry in entries):
        raise ValueError(f"empty host in the host list of {_redacted(url)}")
    hosts = tuple(_host_port(entry, url) for entry in entries)
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"a host is listed twice in {_redacted(url)}")
    return hosts


def _split_host_list(url: str) -> Tuple[str, Optional[List[str]]]:
    """`url` with a host list in its authority ("h1:p1,h2:p2", also
    percent-encoded) replaced by a placeholder, and the list's entries; or
    `url` unchanged and None for a single host."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url, None
    cut = min((rest.find(mark) for mark in "/?#" if mark in rest), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    credentials, at, hosts = authority.rpartition("@")
    decoded = urllib.parse.unquote(hosts)
    if "," not in decoded:
        return url, None
    return f"{scheme}://{credentials}{at}{_HOST_LIST_PLACEHOLDER}{tail}", decoded.split(",")


def _connector_host_list(hosts: Tuple[Tuple[str, int], ...]) -> str:
    """Connector/C's spelling of a host list, "h1:p1,[v6]:p2", every port given."""
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                    for host, port in hosts)


def _query_options(query: str, url: str) -> Dict[str, str]:
    """The options this package understands.  An unknown ssl_* option is an
    error (ignoring it could weaken TLS); any other is ignored with a warning."""
    options: Dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True,
                                              strict_parsing=False):
        if name not in SUPPORTED_OPTIONS:
            if name.lower().startswith(("ssl", "tls")):
                raise ValueError(
                    f"database URL option {name!r} is not supported in {_redacted(url)}; the "
                    f"TLS options are {', '.join(o for o in SUPPORTED_OPTIONS if o[:4] == 'ssl_')}")
            # SQLAlchemy URLs often carry driver options (binary_prefix,
            # local_infile, ...) that mean nothing here: ignore them loudly.
            warnings.warn(
                f"querybook_eventlog ignores database URL option {name!r}; "
                f"it understands {', '.join(SUPPORTED_OPTIONS)}",
                stacklevel=4,
            )
            continue
        if name == "host":
            # SQLAlchemy's multi-host spelling (?host=h1:p1&host=h2:p2),
            # gathered as one comma-separated list
            options[name] = f"{options[name]},{value}" if name in options else value
            continue
        if name in options:
            raise ValueError(f"database URL option {name} is given twice in {_redacted(url)}")
        options[name] = value
    return options


def parse_database_url(url: str) -> Dict[str, Any]:
    """Split an SQLAlchemy-style MySQL URL into the parts the C core needs.

    Accepts ``mysql+pymysql://``, ``mysql+mysqldb://``, ``mysql://`` and
    ``mariadb://`` URLs with user, percent-encoded password, host, port,
    database, and the query options in SUPPORTED_OPTIONS:

    * charset: the connection is always utf8mb4; utf8mb4, utf8, utf8mb3 and
      latin1 are accepted (the text lands unchanged), anything else is a
      ValueError.
    * TLS as PyMySQL and mysqlclient take it: ssl_mode (DISABLED, PREFERRED,
      REQUIRED, VERIFY_CA, VERIFY_IDENTITY; any case), ssl_ca, ssl_capath,
      ssl_cert, ssl_key, ssl_cipher, ssl_verify_cert, ssl_check_hostname.
      They are resolved here into one "ssl_mode": without ssl_mode, a CA
      means VERIFY_IDENTITY (VERIFY_CA with ssl_check_hostname=false),
      ssl_verify_cert=true alone VERIFY_IDENTITY against the system CAs,
      only ssl_cert/ssl_key/ssl_cipher REQUIRED, and nothing DISABLED.
      REQUIRED with a CA verifies the chain too (Connector/C always checks
      a given CA).  Contradictory combinations, repeated options and
      unknown ssl_*/tls* options are a ValueError.

    Several hosts (a MariaDB Galera cluster, or any servers sharing one
    database) are written ``mysql://user:pw@h1:p1,h2:p2,h3:p3/db`` (a
    missing port is 3306, IPv6 hosts in brackets: ``[::1]:3306``), or as
    SQLAlchemy spells multiple hosts, ``mysql://user:pw@/db?host=h1:p1&host=h2:p2``
    (``?host=h1:p1,h2:p2`` too); a percent-encoded list (``h1%3Ap1%2Ch2%3Ap2``)
    means the same.  "hosts" holds the (host, port) pairs in order, always
    (one pair for a single host); with more than one, "host" is the list in
    Connector/C's spelling ("h1:p1,h2:p2", every port given) and "port" is
    0.  The DB logger tries the hosts in order and fails over to the next on
    a lost connection or a node that is not ready.  A host listed twice, an
    empty entry, a bad port, or a list with unix_socket is a ValueError.

    Other query options are ignored with a warning.  Raises ValueError
    (without the password) for anything malformed, contradictory or an
    unsupported scheme.
    """
    if not isinstance(url, str):
        raise TypeError(f"database URL must be a str, not {type(url).__name__}")
    if _unencoded_credentials(url):
        raise ValueError(
            f"malformed database URL {_redacted(url)}: the password (or user) holds an "
            "unencoded '/', '?' or '#'; percent-encode it "
            "(urllib.parse.quote(password, safe=''))")
    url_to_split, listed = _split_host_list(url)
    try:
        parts = urllib.parse.urlsplit(url_to_split)
        port: Optional[int] = parts.port
    except ValueError as error:
        # urllib's message quotes the port it could not read, which must not
        # be (a piece of) the password
        password = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
        detail = str(error)
        if password and any(len(piece) >= 2 and piece in detail
                            for piece in [password, *re.split(r"[/?#]", password)]):
            detail = "bad host or port"
        raise ValueError(f"malformed database URL {_redacted(url)}: {detail}") from None
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {parts.scheme!r} in {_redacted(url)}; "
            f"expected one of {', '.join(SUPPORTED_SCHEMES)}"
        )
    if parts.fragment:
        raise ValueError(f"database URL must not have a #fragment: {_redacted(url)}")
    database = urllib.parse.unquote(parts.path.lstrip("/")) or None
    if database is not None and "/" in database:
        raise ValueError(f"database name may not contain '/': {_redacted(url)}")
    options = _query_options(parts.query, url)
    host = urllib.parse.unquote(parts.hostname) if parts.hostname else None
    if "host" in options:
        if host is not None or listed is not None:
            raise ValueError(f"database URL names hosts both before the path and in ?host= "
                             f"in {_redacted(url)}; use one of them")
        listed = options.pop("host").split(",")
    hosts: Tuple[Tuple[str, int], ...] = ()
    if listed is not None:
        hosts = _host_list(listed, url)
        if len(hosts) == 1:
            (host, port), listed = hosts[0], None
        elif "unix_socket" in options:
            raise ValueError(f"database URL has a host list and unix_socket: {_redacted(url)}")
        else:
            host, port = _connector_host_list(hosts), 0
    elif host is not None:
        hosts = ((host, port or DEFAULT_PORT),)
    if host is None and "unix_socket" not in options:
        raise ValueError(f"database URL has neither a host nor unix_socket: {_redacted(url)}")
    return {
        "host": host,
        "port": port or 0,
        "hosts": hosts,
        "user": urllib.parse.unquote(parts.username) if parts.username is not None else None,
        "password": urllib.parse.unquote(parts.password) if parts.password is not None else None,
        "database": database,
        "unix_socket": options.get("unix_socket"),
        "charset": _charset(options.get("charset"), url),
        **_tls_settings(options, url),
    }


def redacted_url(url: str) -> str:
    """The URL with the password replaced by ***."""
    return _redacted(url)
