"""Parse Querybook's DATABASE_CONN (an SQLAlchemy URL) into connection parts.

Only the standard library is used; the C core receives plain values.  The
password is returned for the connection only: never print the result.
"""

from __future__ import annotations

import re
import urllib.parse
import warnings
from typing import Any, Dict, Optional

SUPPORTED_SCHEMES = ("mysql", "mysql+pymysql", "mysql+mysqldb", "mysql+mysqlconnector",
                     "mariadb", "mariadb+pymysql", "mariadb+mysqldb", "mariadb+mariadbconnector")
SUPPORTED_OPTIONS = ("charset", "unix_socket", "ssl_ca", "ssl_cert", "ssl_key", "ssl_verify_cert")
TRUE_WORDS = ("1", "true", "yes", "on")
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


def parse_database_url(url: str) -> Dict[str, Any]:
    """Split an SQLAlchemy-style MySQL URL into the parts the C core needs.

    Accepts ``mysql+pymysql://``, ``mysql+mysqldb://``, ``mysql://`` and
    ``mariadb://`` URLs with user, percent-encoded password, host, port,
    database and the query options charset, unix_socket, ssl_ca, ssl_cert,
    ssl_key and ssl_verify_cert (other query options are ignored with a warning).
    Raises ValueError (without the password) for anything malformed or an
    unsupported scheme.
    """
    if not isinstance(url, str):
        raise TypeError(f"database URL must be a str, not {type(url).__name__}")
    if _unencoded_credentials(url):
        raise ValueError(
            f"malformed database URL {_redacted(url)}: the password (or user) holds an "
            "unencoded '/', '?' or '#'; percent-encode it "
            "(urllib.parse.quote(password, safe=''))")
    try:
        parts = urllib.parse.urlsplit(url)
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
    options: Dict[str, Any] = {}
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True,
                                              strict_parsing=False):
        if name not in SUPPORTED_OPTIONS:
            # SQLAlchemy URLs often carry driver options (binary_prefix,
            # local_infile, ...) that mean nothing here: ignore them loudly.
            warnings.warn(
                f"querybook_eventlog ignores database URL option {name!r}; "
                f"it understands {', '.join(SUPPORTED_OPTIONS)}",
                stacklevel=3,
            )
            continue
        options[name] = value
    host = urllib.parse.unquote(parts.hostname) if parts.hostname else None
    if host is None and "unix_socket" not in options:
        raise ValueError(f"database URL has neither a host nor unix_socket: {_redacted(url)}")
    ssl_verify = options.get("ssl_verify_cert")
    return {
        "host": host,
        "port": port or 0,
        "user": urllib.parse.unquote(parts.username) if parts.username is not None else None,
        "password": urllib.parse.unquote(parts.password) if parts.password is not None else None,
        "database": database,
        "unix_socket": options.get("unix_socket"),
        "charset": options.get("charset") or "utf8mb4",
        "ssl_ca": options.get("ssl_ca"),
        "ssl_cert": options.get("ssl_cert"),
        "ssl_key": options.get("ssl_key"),
        "ssl_verify_cert": None if ssl_verify is None else _parse_bool("ssl_verify_cert", ssl_verify, url),
    }


def redacted_url(url: str) -> str:
    """The URL with the password replaced by ***."""
    return _redacted(url)
