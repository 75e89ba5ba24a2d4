"""Example tests of fastlb.http.parse_response, fed whole and byte by byte and
checked against hand-written expectations and the reference parser."""

from __future__ import annotations

from types import SimpleNamespace

import http_reference as ref
import pytest
from http_reference import RESPONSE_FIELDS, check_prefixes, outcome

from fastlb import http


def parse_ok(data: bytes, **kw) -> SimpleNamespace:
    got = check_prefixes(http.parse_response, data, RESPONSE_FIELDS, **kw)
    assert got[0] == "ok", got
    assert outcome(ref.parse_response, data, RESPONSE_FIELDS, **kw) == got, "reference disagrees"
    return SimpleNamespace(**got[1])


def parse_bad(data: bytes, code: str, **kw) -> http.ParseError:
    assert code in http.ERROR_CODES
    got = check_prefixes(http.parse_response, data, RESPONSE_FIELDS, **kw)
    assert got == ("error", code), got
    assert outcome(ref.parse_response, data, RESPONSE_FIELDS, **kw) == got, "reference disagrees"
    with pytest.raises(http.ParseError) as info:
        http.parse_response(data, **kw)
    err = info.value
    assert err.code == code
    assert isinstance(err.offset, int) and 0 <= err.offset <= len(data)
    return err


def resp(*headers: bytes, line: bytes = b"HTTP/1.1 200 OK") -> bytes:
    return b"\r\n".join([line, *headers]) + b"\r\n\r\n"


# --------------------------------------------------------------------------
# Status line


def test_simple_response():
    data = resp(b"Content-Type: text/plain", b"Content-Length: 5") + b"hello"
    r = parse_ok(data)
    assert r.status == 200
    assert r.reason == b"OK"
    assert r.version == (1, 1)
    assert r.headers == [(b"Content-Type", b"text/plain"), (b"Content-Length", b"5")]
    assert r.header_bytes == len(data) - 5
    assert r.content_length == 5
    assert r.chunked is False
    assert r.keep_alive is True
    assert r.has_body is True


def test_result_types():
    r = http.parse_response(memoryview(resp(b"Content-Length: 0")))
    assert isinstance(r, http.Response)
    assert type(r.status) is int and type(r.reason) is bytes
    assert type(r.headers) is list and type(r.header_bytes) is int
    for flag in ("chunked", "keep_alive", "has_body"):
        assert type(getattr(r, flag)) is bool
    assert "200" in repr(r)


@pytest.mark.parametrize("line, status, reason", [
    (b"HTTP/1.1 200 OK", 200, b"OK"),
    (b"HTTP/1.0 404 Not Found", 404, b"Not Found"),
    (b"HTTP/1.1 500 Internal  Server\tError ", 500, b"Internal  Server\tError "),
    (b"HTTP/1.1 200 ", 200, b""),
    (b"HTTP/1.1 200", 200, b""),
    (b"HTTP/1.1 999 Custom", 999, b"Custom"),
    (b"HTTP/1.1 100 Continue", 100, b"Continue"),
    (b"HTTP/1.1 418 I'm a teapot", 418, b"I'm a teapot"),
    (b"HTTP/1.1 200 \xc3\x93K \xff", 200, b"\xc3\x93K \xff"),
    (b"HTTP/1.1 200 OK: fine / (really) ;-)", 200, b"OK: fine / (really) ;-)"),
])
def test_status_line(line, status, reason):
    r = parse_ok(resp(b"Content-Length: 0", line=line))
    assert (r.status, r.reason) == (status, reason)


@pytest.mark.parametrize("line", [
    b"HTTP/1.1 20 OK", b"HTTP/1.1 2000 OK", b"HTTP/1.1 abc OK", b"HTTP/1.1 099 Low",
    b"HTTP/1.1 000 Zero", b"HTTP/1.1 -20 OK", b"HTTP/1.1 2x0 OK", b"HTTP/1.1 ", b"HTTP/1.1  200 OK",
    b"HTTP/1.1 200\tOK",
])
def test_status_invalid(line):
    parse_bad(resp(line=line), "status")


@pytest.mark.parametrize("line", [
    b"HTTP/1.1 200 O\x00K", b"HTTP/1.1 200 \x01", b"HTTP/1.1 200 OK\x7f", b"HTTP/1.1 200 \x1b[0m",
])
def test_reason_invalid(line):
    parse_bad(resp(line=line), "reason")


@pytest.mark.parametrize("line", [
    b"HTTP/1.2 200 OK", b"HTTP/2 200 OK", b"HTTP/2.0 200 OK", b"http/1.1 200 OK",
    b"HTTP/1.1x 200 OK", b"ICY 200 OK", b"HTTP/1.1", b"XTTP/1.1 200 OK", b" HTTP/1.1 200 OK",
])
def test_version_invalid(line):
    parse_bad(resp(line=line), "version")


def test_no_empty_lines_before_a_status_line():
    parse_bad(b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "version")


def test_no_host_needed():
    r = parse_ok(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert r.headers == []
    assert r.has_body is False


def test_incomplete_returns_none():
    for data in (b"", b"HTTP/1.1", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nA: b\r\n\r"):
        assert http.parse_response(data) is None


def test_realistic_response():
    data = (
        b"HTTP/1.1 200 OK\r\n"
        b"Date: Mon, 27 Jul 2009 12:28:53 GMT\r\n"
        b"Server: Apache/2.2.14 (Win32)\r\n"
        b"Last-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\n"
        b"ETag: \"34aa387-d-1568eb00\"\r\n"
        b"Cache-Control: public, max-age=31536000, immutable\r\n"
        b"Set-Cookie: id=a3fWa; Expires=Thu, 21 Oct 2021 07:28:00 GMT; Secure; HttpOnly\r\n"
        b"Set-Cookie: lang=en-US; Path=/\r\n"
        b"Vary: Accept-Encoding\r\n"
        b"Content-Encoding: gzip\r\n"
        b"Content-Length: 88\r\n"
        b"Content-Type: text/html; charset=UTF-8\r\n"
        b"\r\n"
    )
    r = parse_ok(data + b"x" * 88)
    assert len(r.headers) == 11
    assert [v for n, v in r.headers if n == b"Set-Cookie"] == [
        b"id=a3fWa; Expires=Thu, 21 Oct 2021 07:28:00 GMT; Secure; HttpOnly",
        b"lang=en-US; Path=/"]
    assert r.content_length == 88
    assert r.header_bytes == len(data)


# --------------------------------------------------------------------------
# Body and persistence


STATUSES = [100, 101, 103, 199, 200, 201, 204, 206, 299, 300, 301, 304, 400, 404, 500, 599]
METHODS = [b"GET", b"HEAD", b"POST", b"CONNECT", b"PUT", b"OPTIONS"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("status", STATUSES)
def test_has_body_matrix(status, method):
    no_body = method == b"HEAD" or status < 200 or status in (204, 304)
    connect_ok = method == b"CONNECT" and 200 <= status < 300
    expected = not (no_body or connect_ok)
    r = parse_ok(resp(b"Content-Length: 10", line=b"HTTP/1.1 %d X" % status),
                 request_method=method)
    assert r.has_body is expected
    assert ref.has_body(status, method) is expected
    # The declared length is still reported.
    assert r.content_length == 10


def test_has_body_default_method_is_get():
    assert http.parse_response(resp(b"Content-Length: 1")).has_body is True
    assert http.parse_response(b"HTTP/1.1 304 Not Modified\r\n\r\n").has_body is False


def test_head_response_with_length():
    r = parse_ok(resp(b"Content-Length: 1000"), request_method=b"HEAD")
    assert r.has_body is False
    assert r.content_length == 1000
    assert r.keep_alive is True


@pytest.mark.parametrize("version, connection, framing, keep_alive", [
    (b"1.1", [], b"Content-Length: 0", True),
    (b"1.1", [b"close"], b"Content-Length: 0", False),
    (b"1.1", [b"Keep-Alive, Close"], b"Content-Length: 0", False),
    (b"1.1", [b"keep-alive"], b"Transfer-Encoding: chunked", True),
    (b"1.0", [], b"Content-Length: 0", False),
    (b"1.0", [b"keep-alive"], b"Content-Length: 0", True),
    (b"1.0", [b"keep-alive", b"close"], b"Content-Length: 0", False),
    # A body delimited by the close of the connection ends persistence.
    (b"1.1", [], b"X-No-Framing: 1", False),
    (b"1.1", [], b"Transfer-Encoding: gzip", False),
    (b"1.0", [b"keep-alive"], b"X-No-Framing: 1", False),
    # RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
    (b"1.0", [b"keep-alive"], b"Transfer-Encoding: chunked", False),
    (b"1.1", [b"keep-alive"], b"Transfer-Encoding: chunked", True),
])
def test_keep_alive_matrix(version, connection, framing, keep_alive):
    data = resp(framing, *[b"Connection: " + c for c in connection],
                line=b"HTTP/" + version + b" 200 OK")
    assert parse_ok(data).keep_alive is keep_alive


def test_bodyless_response_without_framing_keeps_alive():
    assert parse_ok(b"HTTP/1.1 204 No Content\r\n\r\n").keep_alive is True
    assert parse_ok(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n").keep_alive is True
    assert parse_ok(resp(), request_method=b"HEAD").keep_alive is True


def test_chunked_response():
    r = parse_ok(resp(b"Transfer-Encoding: chunked"))
    assert r.chunked is True
    assert r.content_length is None
    assert r.has_body is True


@pytest.mark.parametrize("te", [b"gzip", b"chunked, gzip", b"identity", b"deflate, br"])
def test_te_not_ending_in_chunked_is_valid_in_a_response(te):
    r = parse_ok(resp(b"Transfer-Encoding: " + te))
    assert r.chunked is False
    assert r.content_length is None
    assert r.has_body is True
    assert r.keep_alive is False


def test_te_gzip_then_chunked_response():
    assert parse_ok(resp(b"Transfer-Encoding: gzip, chunked")).chunked is True
    assert parse_ok(resp(b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked")).chunked


def test_pipelined_responses():
    msgs = [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    ]
    rest = b"".join(msgs)
    statuses = []
    while rest:
        r = http.parse_response(rest)
        statuses.append(r.status)
        rest = rest[r.header_bytes + (r.content_length or 0 if r.has_body else 0):]
    assert statuses == [100, 200, 204, 404]


# --------------------------------------------------------------------------
# Strictness in response heads


def test_cl_and_te():
    parse_bad(resp(b"Content-Length: 5", b"Transfer-Encoding: chunked"), "cl_and_te")


def test_content_length_conflict_and_syntax():
    parse_bad(resp(b"Content-Length: 5", b"Content-Length: 6"), "content_length_conflict")
    parse_bad(resp(b"Content-Length: 5x"), "content_length")
    parse_bad(resp(b"Content-Length: 99999999999999999999"), "content_length")
    assert parse_ok(resp(b"Content-Length: 5", b"Content-Length: 5")).content_length == 5


def test_te_chunked_twice():
    parse_bad(resp(b"Transfer-Encoding: chunked, chunked"), "te_chunked_twice")


@pytest.mark.parametrize("data, code", [
    (b"HTTP/1.1 200 OK\r\nServer : x\r\n\r\n", "header_name_space"),
    (b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "obs_fold"),
    (b"HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n", "header_value"),
    (b"HTTP/1.1 200 OK\r\nX\x00: a\r\n\r\n", "header_name"),
    (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "bare_cr"),
    (b"HTTP/1.1 200 OK\r\nX: a\n\r\n", "bare_lf"),
    (b"HTTP/1.1 200 OK\n\n", "bare_lf"),
    (b"HTTP/1.1 200 OK\r\r\n\r\n", "bare_cr"),
])
def test_field_strictness(data, code):
    parse_bad(data, code)


def test_limits():
    data = resp(b"X-Pad: " + b"p" * 1000)
    assert parse_ok(data, max_header_bytes=len(data)).header_bytes == len(data)
    parse_bad(data, "head_too_large", max_header_bytes=len(data) - 1)
    data = resp(*[b"X: y"] * 10)
    parse_ok(data, max_headers=10)
    parse_bad(data, "too_many_headers", max_headers=9)


def test_request_method_may_be_str():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert http.parse_response(data, request_method="HEAD").has_body is False
    assert http.parse_response(data, request_method=b"HEAD").has_body is False
    assert http.parse_response(data, request_method="GET").has_body is True
