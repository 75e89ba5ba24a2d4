"""Addresses in the config and the admin API: "host:port" or "[v6]:port".

parse() reads one without DNS and writes it one way (canonical):

- an IPv4 address as four decimal numbers, "127.0.0.1" for
  "127.000.000.001" and for the short forms the system resolver takes
  ("127.1", "2130706433"), while a part whose leading zero makes it octal to
  the resolver and decimal to a reader ("010" is 8 to inet_aton) is refused
  as ambiguous;
- an IPv6 address compressed, in lower case, in brackets: "[::1]:80" for
  "[0:0::1]:80" or "::1:80";
- a host name in lower case (DNS names are case-insensitive), not resolved:
  "db1.internal:5432" stays a name, and names the server in the admin API,
  stats and metrics.

resolve() turns the host into an IP literal (the first address the system
resolver gives, once, when the config is loaded), and endpoint() is what
two addresses are compared by: the IP and the port.  "localhost:80" is the
same endpoint as "127.0.0.1:80" when localhost resolves there; "[::1]:80"
is not (another address family: a server may listen on one and not the
other), while "[::ffff:127.0.0.1]:80" is (an IPv4-mapped address reaches
the IPv4 one)."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

__all__ = ["Address", "Endpoint", "canonical", "endpoint", "lookup_key", "parse", "resolve"]

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Endpoint = tuple[IP, int]

_PORT = re.compile(r"[0-9]{1,5}")
_NUMERIC = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


@dataclass(frozen=True)
class Address:
    """A parsed address: host is an IP literal (ip set) or a lower-case
    host name (ip None)."""

    host: str
    port: int
    ip: IP | None = None

    def __str__(self) -> str:
        if isinstance(self.ip, ipaddress.IPv6Address):
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parse(text: object) -> Address:
    """The address of "host:port" or "[v6]:port", canonical, without DNS.
    Raises ValueError naming what is wrong."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"'{text}' is not host:port")
    host, _, port_text = text.rpartition(":")
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise ValueError(f"'{text}': the port must be a number in 0..65535")
    port = int(port_text)
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not host:
        raise ValueError(f"'{text}': the host is missing")
    if bracketed or ":" in host:
        try:
            v6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"'{text}': {'brackets hold' if bracketed else 'a host with : is'} an IPv6 "
                "address, like [::1]:80"
            ) from None
        return Address(str(v6), port, v6)
    if _NUMERIC.fullmatch(host):
        v4 = _ipv4(host, text)
        return Address(str(v4), port, v4)
    name = host.lower()
    if len(name.rstrip(".")) > 253 or not _NAME.fullmatch(name):
        raise ValueError(f"'{text}': '{host}' is not an IP address or a host name")
    return Address(name, port)


def _ipv4(host: str, text: str) -> ipaddress.IPv4Address:
    """A host of digits and dots as the system resolver (inet_aton) reads
    it: one to four numbers, the last filling the bytes left."""
    parts = host.split(".")
    for part in parts:
        if len(part) > 1 and part[0] == "0" and (set(part) - set("01234567") or int(part, 8) > 7):
            raise ValueError(
                f"'{text}': '{part}' is ambiguous: with its leading zero the system resolver "
                "reads it as an octal number; write it without leading zeros"
            )
    values = [int(part) for part in parts]
    last = 256 ** (5 - len(values))
    if len(values) > 4 or any(v > 255 for v in values[:-1]) or values[-1] >= last:
        raise ValueError(f"'{text}': {host} is not an IPv4 address (four numbers in 0..255)")
    number = values[-1]
    for i, value in enumerate(values[:-1]):
        number += value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def canonical(text: object) -> str:
    """The canonical spelling of an address.  Raises ValueError."""
    return str(parse(text))


def lookup_key(text: str) -> str:
    """The canonical spelling of text, to look a server up by; text itself
    when it is not an address (it then names no server)."""
    try:
        return canonical(text)
    except ValueError:
        return text


def resolve(address: Address) -> str:
    """The host as an IP literal: itself, or the first address the system
    resolver gives for a name.  Raises ValueError."""
    if address.ip is not None:
        return address.host
    try:
        infos = socket.getaddrinfo(address.host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"'{address}': cannot resolve '{address.host}': {exc.strerror}") from None
    return str(infos[0][4][0])


def endpoint(ip: str, port: int) -> Endpoint:
    """What two addresses are the same server by: the resolved IP (an
    IPv4-mapped IPv6 address as its IPv4 one) and the port."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address, port
