"""Secrets out of what fastlb shows: the admin API's /config, and the
request paths its audit log records.

What counts as a secret:

- a config key whose name says so (token, secret, password): the admin
  token today, and any such key added later;
- the value of a header whose name is sensitive, wherever the config gives
  one (a route's request_headers and response_headers, its match.headers):
  Authorization, Proxy-Authorization, Cookie, Set-Cookie, and any name
  that holds auth, token, secret, passw, session, credential or signature,
  or ends in "key" (X-Api-Key, X-Hmac-Key), case-insensitive;
- every cookie value a route matches on (a cookie is the Cookie header's);
- the value of a query parameter whose name is sensitive by the same rule,
  in a health check's path (and in a logged request path).

A redacted value reads REDACTED; names stay, so that the shape of the
config, and which headers it sets, can still be read."""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["REDACTED", "redacted_config", "redacted_query", "secret_header", "secret_key"]

REDACTED = "<redacted>"

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_WORDS = ("auth", "token", "secret", "passw", "session", "credential", "signature")
_SECRET_KEYS = ("token", "secret", "password", "passwd")
_QUERY_PAIR = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")


def secret_header(name: str) -> bool:
    """Whether a header (or query parameter) of this name carries a secret."""
    lower = name.lower()
    return (
        lower in _SECRET_HEADERS
        or lower.endswith("key")
        or any(word in lower for word in _SECRET_WORDS)
    )


def secret_key(name: str) -> bool:
    """Whether a config key of this name holds a secret."""
    lower = name.lower()
    return any(word in lower for word in _SECRET_KEYS)


def redacted_query(target: str) -> str:
    """A request target with the values of its sensitive query parameters
    redacted: "/health?token=<redacted>&full=1"."""
    if "?" not in target:
        return target
    return _QUERY_PAIR.sub(
        lambda m: f"{m[1]}{m[2]}={REDACTED if secret_header(m[2]) else m[3]}", target
    )


def redacted_config(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config as Config.model_dump(mode="json", by_alias=True)
    gives it, with no secret left in it."""
    out = copy.deepcopy(data)
    _redact_keys(out)
    for listener in out.get("listeners") or ():
        for route in listener.get("routes") or ():
            for ops in (route.get("request_headers"), route.get("response_headers")):
                for table in ("set", "add"):
                    _redact_headers((ops or {}).get(table))
            match = route.get("match") or {}
            _redact_headers(match.get("headers"))
            cookies = match.get("cookies") or {}
            for name, value in cookies.items():
                if isinstance(value, str):
                    cookies[name] = REDACTED
    for backend in (out.get("backends") or {}).values():
        check = backend.get("health_check")
        if check and isinstance(check.get("path"), str):
            check["path"] = redacted_query(check["path"])
    return out


def _redact_keys(node: Any) -> None:
    """Redact every string under a secret-named key, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and secret_key(str(key)):
                node[key] = REDACTED
            else:
                _redact_keys(value)
    elif isinstance(node, list):
        for item in node:
            _redact_keys(item)


def _redact_headers(headers: dict[str, Any] | None) -> None:
    if not headers:
        return
    for name, value in headers.items():
        if isinstance(value, str) and secret_header(name):
            headers[name] = REDACTED
