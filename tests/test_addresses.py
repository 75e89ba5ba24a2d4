"""fastlb/addresses.py: each spelling of an address written one way, the
spellings that are refused, and which addresses are one endpoint."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from fastlb.addresses import canonical, endpoint, lookup_key, parse, resolve

LOCALHOST = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0]


@pytest.mark.parametrize(
    ("written", "canonical_form"),
    [
        ("127.0.0.1:80", "127.0.0.1:80"),
        ("127.000.000.001:80", "127.0.0.1:80"),
        ("10.0.0.007:80", "10.0.0.7:80"),  # octal and decimal agree
        ("127.1:80", "127.0.0.1:80"),  # the short forms the system resolver takes
        ("10.1.2:80", "10.1.0.2:80"),
        ("2130706433:80", "127.0.0.1:80"),
        ("0:80", "0.0.0.0:80"),
        ("[::1]:80", "[::1]:80"),
        ("[0:0:0:0:0:0:0:1]:80", "[::1]:80"),
        ("::1:80", "[::1]:80"),
        ("[2001:DB8::A]:443", "[2001:db8::a]:443"),
        ("[FE80::1%eth0]:80", "[fe80::1%eth0]:80"),
        ("[::ffff:127.0.0.1]:80", f"[{ipaddress.IPv6Address('::ffff:127.0.0.1')}]:80"),
        ("LocalHost:80", "localhost:80"),
        ("DB1.Internal.:5432", "db1.internal.:5432"),
        ("db_1.internal:5432", "db_1.internal:5432"),
        ("127.0.0.1:00080", "127.0.0.1:80"),
    ],
)
def test_canonical(written: str, canonical_form: str) -> None:
    assert canonical(written) == canonical_form
    assert canonical(canonical_form) == canonical_form


@pytest.mark.parametrize(
    ("written", "error"),
    [
        ("127.0.0.1", "is not host:port"),
        (":80", "the host is missing"),
        ("127.0.0.1:", "the port must be a number in 0..65535"),
        ("127.0.0.1:70000", "the port must be a number in 0..65535"),
        ("127.0.0.1:-1", "the port must be a number in 0..65535"),
        ("127.0.0.1:\u0663", "the port must be a number in 0..65535"),  # an Arabic-Indic 3
        ("010.0.0.1:80", "'010' is ambiguous"),  # 8.0.0.1 to inet_aton
        ("10.0.0.08:80", "'08' is ambiguous"),
        ("256.0.0.1:80", "256.0.0.1 is not an IPv4 address"),
        ("1.2.3.4.5:80", "1.2.3.4.5 is not an IPv4 address"),
        ("1.2.65536:80", "1.2.65536 is not an IPv4 address"),
        ("[localhost]:80", "brackets hold an IPv6 address"),
        ("[127.0.0.1]:80", "brackets hold an IPv6 address"),
        ("1:2:3:80", "a host with : is an IPv6 address"),
        ("a b:80", "'a b' is not an IP address or a host name"),
        ("-web:80", "is not an IP address or a host name"),
        ("b\u00fccher.example:80", "is not an IP address or a host name"),
        ("a\x00b:80", "is not an IP address or a host name"),
        ("a" * 64 + ".example:80", "is not an IP address or a host name"),
        (".".join(["a" * 60] * 5) + ":80", "is not an IP address or a host name"),
        (5, "'5' is not host:port"),
    ],
)
def test_refused(written: object, error: str) -> None:
    with pytest.raises(ValueError) as info:
        parse(written)
    assert str(info.value).startswith("'") and error in str(info.value)  # quotes what was written


def test_lookup_key() -> None:
    assert lookup_key("127.000.000.001:80") == "127.0.0.1:80"
    assert lookup_key("not an address") == "not an address"


def _endpoint(text: str) -> object:
    address = parse(text)
    return endpoint(resolve(address), address.port)


def test_one_endpoint_under_several_spellings() -> None:
    assert resolve(parse("localhost:80")) == LOCALHOST  # the first the resolver gives
    spellings = ["127.0.0.1:80", "127.000.000.001:80", "127.1:80", "[::ffff:127.0.0.1]:80"]
    assert {_endpoint(text) for text in spellings} == {(ipaddress.ip_address("127.0.0.1"), 80)}
    assert _endpoint("localhost:80") == _endpoint(
        f"[{LOCALHOST}]:80" if ":" in LOCALHOST else f"{LOCALHOST}:80"
    )


def test_another_family_or_port_is_another_endpoint() -> None:
    assert _endpoint("[::1]:80") != _endpoint("127.0.0.1:80")
    assert _endpoint("127.0.0.1:81") != _endpoint("127.0.0.1:80")
