"""Example tests of fastlb.http.parse_request.

Every case is parsed whole and byte by byte (each prefix of the input), as
bytes, bytearray and memoryview, and checked against both a hand-written
expectation and the reference parser in http_reference.py."""

from __future__ import annotations

from types import SimpleNamespace

import http_reference as ref
import pytest
from http_reference import REQUEST_FIELDS, check_prefixes, outcome

from fastlb import http


def parse_ok(data: bytes, step: int | None = None, **kw) -> SimpleNamespace:
    got = check_prefixes(http.parse_request, data, REQUEST_FIELDS, step=step, **kw)
    assert got[0] == "ok", got
    assert outcome(ref.parse_request, data, REQUEST_FIELDS, **kw) == got, "reference disagrees"
    return SimpleNamespace(**got[1])


def parse_bad(data: bytes, code: str, step: int | None = None, **kw) -> http.ParseError:
    assert code in http.ERROR_CODES
    got = check_prefixes(http.parse_request, data, REQUEST_FIELDS, step=step, **kw)
    assert got == ("error", code), got
    assert outcome(ref.parse_request, data, REQUEST_FIELDS, **kw) == got, "reference disagrees"
    with pytest.raises(http.ParseError) as info:
        http.parse_request(data, **kw)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.code == code
    assert isinstance(err.offset, int)
    assert 0 <= err.offset <= len(data)
    assert str(err)
    return err


def req(*headers: bytes, line: bytes = b"GET / HTTP/1.1", host: bool = True) -> bytes:
    """A request head with the given field lines (Host: example.com first)."""
    lines = [line]
    if host:
        lines.append(b"Host: example.com")
    lines += headers
    return b"\r\n".join(lines) + b"\r\n\r\n"


# --------------------------------------------------------------------------
# Basics


def test_simple_get():
    data = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"
    r = parse_ok(data)
    assert r.method == b"GET"
    assert r.target == b"/index.html"
    assert r.version == (1, 1)
    assert r.headers == [(b"Host", b"example.com")]
    assert r.header_bytes == len(data)
    assert r.content_length is None
    assert r.chunked is False
    assert r.keep_alive is True
    assert r.expect_continue is False
    assert r.upgrade is False


def test_result_types():
    r = http.parse_request(bytearray(req(b"Content-Length: 3")))
    assert isinstance(r, http.Request)
    assert type(r.method) is bytes and type(r.target) is bytes
    assert type(r.version) is tuple
    assert type(r.headers) is list
    assert all(type(n) is bytes and type(v) is bytes for n, v in r.headers)
    assert type(r.header_bytes) is int
    assert r.content_length == 3 and type(r.content_length) is int
    for flag in ("chunked", "keep_alive", "expect_continue", "upgrade"):
        assert type(getattr(r, flag)) is bool
    assert "GET" in repr(r)


def test_http10_without_host():
    r = parse_ok(b"GET / HTTP/1.0\r\n\r\n")
    assert r.version == (1, 0)
    assert r.headers == []
    assert r.keep_alive is False
    assert r.header_bytes == 18


def test_other_methods_and_targets():
    cases = [
        (b"POST", b"/submit?x=1&y=%20"),
        (b"OPTIONS", b"*"),
        (b"CONNECT", b"example.com:443"),
        (b"GET", b"http://example.com/a/b?c#d"),
        (b"M-SEARCH", b"*"),
        (b"X!#$%&'*+-.^_`|~9", b"/~user/{x}[y]\"<z>|"),
        (b"get", b"/"),
    ]
    for method, target in cases:
        r = parse_ok(method + b" " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (r.method, r.target) == (method, target)


def test_accepts_bytes_bytearray_memoryview():
    data = req(b"Content-Length: 5") + b"hello"
    expected = outcome(http.parse_request, data, REQUEST_FIELDS)
    assert expected[0] == "ok"
    for buf in (bytes(data), bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert outcome(http.parse_request, buf, REQUEST_FIELDS) == expected
    # A memoryview into the middle of a larger buffer.
    big = b"garbage" + data + b"more"
    view = memoryview(big)[7:7 + len(data)]
    assert outcome(http.parse_request, view, REQUEST_FIELDS) == expected


def test_rejects_non_buffers():
    with pytest.raises(TypeError):
        http.parse_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(TypeError):
        http.parse_request(None)


def test_incomplete_returns_none():
    for data in (b"", b"G", b"GET / HTTP/1.1", b"GET / HTTP/1.1\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n\r"):
        assert http.parse_request(data) is None
        assert ref.parse_request(data) is None


def test_realistic_browser_request():
    data = (
        b"GET /search?q=http%2F1.1+parser&hl=en HTTP/1.1\r\n"
        b"Host: www.example.com\r\n"
        b"Connection: keep-alive\r\n"
        b'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
        b"sec-ch-ua-mobile: ?0\r\n"
        b'sec-ch-ua-platform: "Linux"\r\n'
        b"Upgrade-Insecure-Requests: 1\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        b" Chrome/124.0.0.0 Safari/537.36\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
        b"image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
        b"Sec-Fetch-Site: none\r\n"
        b"Sec-Fetch-Mode: navigate\r\n"
        b"Sec-Fetch-User: ?1\r\n"
        b"Sec-Fetch-Dest: document\r\n"
        b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
        b"Cookie: session=abc123; theme=dark; _ga=GA1.2.3456.7890\r\n"
        b"If-None-Match: W/\"5e15153d-120f\"\r\n"
        b"\r\n"
    )
    r = parse_ok(data)
    assert r.method == b"GET"
    assert r.target == b"/search?q=http%2F1.1+parser&hl=en"
    assert len(r.headers) == 16
    assert r.headers[0] == (b"Host", b"www.example.com")
    assert r.headers[2] == (
        b"sec-ch-ua", b'"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"')
    assert dict(r.headers)[b"Cookie"] == b"session=abc123; theme=dark; _ga=GA1.2.3456.7890"
    assert r.header_bytes == len(data)
    assert r.keep_alive is True
    # Upgrade-Insecure-Requests is not Upgrade.
    assert r.upgrade is False


def test_realistic_post_with_body():
    body = b'{"name": "fastlb", "tags": ["lb", "proxy"]}'
    data = (
        b"POST /api/v1/items HTTP/1.1\r\n"
        b"Host: api.example.com:8443\r\n"
        b"Content-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30."
        b"ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo\r\n"
        b"X-Request-ID: 7d0b6f2c-3b4e-4c8e-9f00-1a2b3c4d5e6f\r\n"
        b"\r\n" % len(body)
    ) + body
    r = parse_ok(data)
    assert r.content_length == len(body)
    assert data[r.header_bytes:] == body


# --------------------------------------------------------------------------
# Field lines


def test_header_value_whitespace_stripped():
    r = parse_ok(req(
        b"A:  x y  ",
        b"B:\tx\ty\t",
        b"C: \t x \t ",
        b"D:",
        b"E:   ",
        b"F:\t",
        b"G:x",
    ))
    assert r.headers[1:] == [
        (b"A", b"x y"),
        (b"B", b"x\ty"),
        (b"C", b"x"),
        (b"D", b""),
        (b"E", b""),
        (b"F", b""),
        (b"G", b"x"),
    ]


def test_header_names_kept_as_sent_and_in_order():
    r = parse_ok(req(b"X-b: 1", b"x-A: 2", b"X-B: 3", b"content-TYPE: text/plain"))
    assert r.headers == [(b"Host", b"example.com"), (b"X-b", b"1"), (b"x-A", b"2"),
                         (b"X-B", b"3"), (b"content-TYPE", b"text/plain")]


def test_header_names_all_tchars():
    name = b"!#$%&'*+-.^_`|~0123456789abcXYZ"
    r = parse_ok(req(name + b": v"))
    assert r.headers[1] == (name, b"v")


def test_obs_text_and_htab_allowed_in_values():
    value = "caf\u00e9 \u2603".encode()
    r = parse_ok(req(b"X-Utf8: " + value, b"X-Latin1: \xff\x80\xa0", b"X-Tab: a\tb"))
    assert r.headers[1:] == [(b"X-Utf8", value), (b"X-Latin1", b"\xff\x80\xa0"),
                             (b"X-Tab", b"a\tb")]


def test_colon_in_value_and_empty_looking_values():
    r = parse_ok(req(b"X-Time: 12:34:56", b"X-Url: http://a/b", b"X-Colon::"))
    assert r.headers[1:] == [(b"X-Time", b"12:34:56"), (b"X-Url", b"http://a/b"),
                             (b"X-Colon", b":")]


def test_leading_crlfs_skipped():
    head = req()
    for n in (1, 2, 5):
        data = b"\r\n" * n + head
        r = parse_ok(data)
        assert r.method == b"GET"
        assert r.header_bytes == len(data)


def test_leading_bare_lf_rejected():
    parse_bad(b"\n" + req(), "bare_lf")


# --------------------------------------------------------------------------
# Framing


@pytest.mark.parametrize("value, expected", [
    (b"0", 0),
    (b"1", 1),
    (b"123456", 123456),
    (b"007", 7),
    (b" 42 ", 42),
    (b"9223372036854775807", 2**63 - 1),
    (b"0000000000000000000000000001", 1),
])
def test_content_length(value, expected):
    r = parse_ok(req(b"Content-Length: " + value))
    assert r.content_length == expected
    assert r.chunked is False


def test_content_length_name_case_insensitive():
    assert parse_ok(req(b"content-LENGTH: 12")).content_length == 12


def test_content_length_identical_repeats_ok():
    r = parse_ok(req(b"Content-Length: 10", b"content-length: 10", b"Content-Length: 010"))
    assert r.content_length == 10


@pytest.mark.parametrize("te", [
    b"chunked",
    b"Chunked",
    b"CHUNKED",
    b"gzip, chunked",
    b"gzip,chunked",
    b"deflate , gzip ,chunked",
    b"gzip;q=1, chunked",
    b'x-enc ; a = "b c\\"d" , chunked',
    b"chunked;ext=1",
])
def test_transfer_encoding_chunked(te):
    r = parse_ok(req(b"Transfer-Encoding: " + te))
    assert r.chunked is True
    assert r.content_length is None


def test_transfer_encoding_over_several_lines():
    r = parse_ok(req(b"Transfer-Encoding: gzip", b"transfer-encoding: chunked"))
    assert r.chunked is True


def test_no_body_framing():
    r = parse_ok(req())
    assert r.content_length is None and r.chunked is False


# --------------------------------------------------------------------------
# Connection, Expect, Upgrade


@pytest.mark.parametrize("version, connection, keep_alive", [
    (b"1.1", [], True),
    (b"1.1", [b"close"], False),
    (b"1.1", [b"Close"], False),
    (b"1.1", [b"keep-alive"], True),
    (b"1.1", [b"keep-alive, close"], False),
    (b"1.1", [b"foo, close, bar"], False),
    (b"1.1", [b" ,close, "], False),
    (b"1.1", [b"keep-alive", b"close"], False),
    (b"1.1", [b"closed"], True),
    (b"1.1", [b"close-ish"], True),
    (b"1.1", [b"upgrade"], True),
    (b"1.1", [b""], True),
    (b"1.0", [], False),
    (b"1.0", [b"keep-alive"], True),
    (b"1.0", [b"Keep-Alive"], True),
    (b"1.0", [b"foo,keep-alive"], True),
    (b"1.0", [b"keep-alive, close"], False),
    (b"1.0", [b"close, keep-alive"], False),
    (b"1.0", [b"keep-alive", b"close"], False),
    (b"1.0", [b"close"], False),
    (b"1.0", [b"keep-alive-x"], False),
    (b"1.0", [b"keepalive"], False),
])
def test_keep_alive_matrix(version, connection, keep_alive):
    data = req(*[b"Connection: " + c for c in connection], line=b"GET / HTTP/" + version)
    assert parse_ok(data).keep_alive is keep_alive


@pytest.mark.parametrize("headers, expected", [
    ([b"Expect: 100-continue"], True),
    ([b"Expect: 100-Continue"], True),
    ([b"expect:   100-continue  "], True),
    ([], False),
    ([b"Expect: 200-ok"], False),
    ([b"X-Expect: 100-continue"], False),
])
def test_expect_continue(headers, expected):
    data = req(b"Content-Length: 10", *headers, line=b"PUT /upload HTTP/1.1")
    assert parse_ok(data).expect_continue is expected


@pytest.mark.parametrize("headers, expected", [
    ([b"Connection: Upgrade", b"Upgrade: websocket"], True),
    ([b"Connection: keep-alive, Upgrade", b"Upgrade: websocket"], True),
    ([b"Upgrade: h2c", b"Connection: Upgrade, HTTP2-Settings",
      b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA"], True),
    ([b"Upgrade: websocket"], False),
    ([b"Connection: upgrade"], False),
    ([b"Connection: keep-alive", b"Upgrade: websocket"], False),
    ([b"Upgrade-Insecure-Requests: 1", b"Connection: upgrade"], False),
])
def test_upgrade(headers, expected):
    assert parse_ok(req(*headers)).upgrade is expected


def test_websocket_handshake():
    data = (
        b"GET /chat HTTP/1.1\r\n"
        b"Host: server.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Origin: http://example.com\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    )
    r = parse_ok(data)
    assert r.upgrade is True
    assert r.keep_alive is True


# --------------------------------------------------------------------------
# Pipelining


def test_pipelined_requests():
    msgs = [
        (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", b""),
        (b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", b"hello"),
        (b"PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b""),
        (b"\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n", b""),
        (b"GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b""),
        (b"GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b""),
    ]
    buf = b"".join(h + b for h, b in msgs)
    parse_ok(buf)  # the first one, byte by byte, with the rest as trailing bytes
    targets = []
    for kind in (bytes, bytearray, memoryview):
        rest = kind(buf)
        targets = []
        while len(rest):
            r = http.parse_request(rest)
            assert r is not None
            targets.append(r.target)
            rest = rest[r.header_bytes + (r.content_length or 0):]
        assert targets == [b"/a", b"/b", b"/c", b"/d", b"/e", b"/f"]


def test_pipelined_chunked_request():
    body = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"
    second = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    buf = req(b"Transfer-Encoding: chunked", line=b"POST /up HTTP/1.1") + body + second
    r = http.parse_request(buf)
    assert r.chunked
    dec = http.ChunkedDecoder()
    data, done = dec.feed(buf[r.header_bytes:])
    assert (data, done) == (b"Wikipedia", True)
    assert dec.unused == second
    assert http.parse_request(dec.unused).target == b"/next"


def test_trailing_bytes_do_not_matter():
    head = req(b"Content-Length: 4")
    for tail in (b"", b"body", b"\x00\xff\r\n", b"GET / HTTP/1.1\r\n"):
        r = parse_ok(head + tail)
        assert r.header_bytes == len(head)


# --------------------------------------------------------------------------
# Limits


def sized_request(n: int) -> bytes:
    """A valid request head of exactly n bytes."""
    prefix, suffix = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ", b"\r\n\r\n"
    assert n > len(prefix) + len(suffix)
    return prefix + b"p" * (n - len(prefix) - len(suffix)) + suffix


@pytest.mark.parametrize("limit", [64, 1000, 8192, 65536])
def test_head_at_the_limit(limit):
    data = sized_request(limit)
    assert len(data) == limit
    r = parse_ok(data, max_header_bytes=limit)
    assert r.header_bytes == limit


@pytest.mark.parametrize("limit", [64, 1000, 8192, 65536])
def test_head_over_the_limit(limit):
    parse_bad(sized_request(limit + 1), "head_too_large", max_header_bytes=limit)
    parse_bad(sized_request(limit + 1000), "head_too_large", max_header_bytes=limit)


def test_default_limit_is_64k():
    parse_ok(sized_request(65536))
    parse_bad(sized_request(65537), "head_too_large")


def test_incomplete_head_over_the_limit():
    data = sized_request(200)[:-4]  # no end of head yet
    assert http.parse_request(data, max_header_bytes=len(data) + 4) is None
    parse_bad(data, "head_too_large", max_header_bytes=len(data) - 1)
    parse_bad(data, "head_too_large", max_header_bytes=100)
    # One byte short of the limit at which it could still end.
    assert http.parse_request(data[:-3], max_header_bytes=len(data) + 1) is None
    # With the whole buffer at the limit but no end, it may be refused early.
    assert outcome(http.parse_request, data, REQUEST_FIELDS, max_header_bytes=len(data)) in (
        ("incomplete",), ("error", "head_too_large"))


def test_huge_incomplete_head():
    data = b"GET /" + b"a" * 200_000
    parse_bad(data, "head_too_large", step=997)


def test_leading_crlfs_count_toward_head():
    data = b"\r\n" * 3 + sized_request(100)
    assert parse_ok(data, max_header_bytes=106).header_bytes == 106


def test_many_headers_near_the_limit():
    headers = [b"X-H%03d: %s" % (i, b"v" * 600) for i in range(99)]
    data = req(*headers)
    assert 60_000 < len(data) < 65536
    r = parse_ok(data)
    assert len(r.headers) == 100
    assert r.headers[-1] == (b"X-H098", b"v" * 600)


@pytest.mark.parametrize("limit", [1, 5, 100, 200])
def test_max_headers(limit):
    def make(n):
        return req(*[b"X-%d: %d" % (i, i) for i in range(n - 1)])
    r = parse_ok(make(limit), max_headers=limit)
    assert len(r.headers) == limit
    parse_bad(make(limit + 1), "too_many_headers", max_headers=limit)


def test_default_max_headers_is_100():
    parse_ok(req(*[b"X: y"] * 99))
    parse_bad(req(*[b"X: y"] * 100), "too_many_headers")


def test_bad_limits_are_value_errors():
    for kw in ({"max_header_bytes": 0}, {"max_header_bytes": -1}, {"max_headers": 0}):
        with pytest.raises(ValueError) as info:
            http.parse_request(req(), **kw)
        assert not isinstance(info.value, http.ParseError)


# --------------------------------------------------------------------------
# Strictness: each rule raises ParseError with its own code


def test_cl_and_te():
    parse_bad(req(b"Content-Length: 5", b"Transfer-Encoding: chunked"), "cl_and_te")
    parse_bad(req(b"Transfer-Encoding: chunked", b"Content-Length: 5"), "cl_and_te")
    parse_bad(req(b"Transfer-Encoding: chunked", b"Content-Length: 0"), "cl_and_te")


@pytest.mark.parametrize("values", [
    [b"5", b"6"],
    [b"0", b"1"],
    [b"10", b"10", b"11"],
    [b"1", b"01", b"2"],
])
def test_content_length_conflict(values):
    parse_bad(req(*[b"Content-Length: " + v for v in values]), "content_length_conflict")


@pytest.mark.parametrize("value", [
    b"", b"abc", b"-1", b"+1", b"1.0", b"0x10", b"1 2", b"1,1", b"5, 5", b"1e3", b"\xd9\xa1",
    b"9223372036854775808", b"18446744073709551616", b"99999999999999999999999",
])
def test_content_length_invalid(value):
    parse_bad(req(b"Content-Length: " + value), "content_length")


@pytest.mark.parametrize("te", [b"gzip", b"chunked, gzip", b"identity", b"chunked,deflate"])
def test_te_not_chunked(te):
    parse_bad(req(b"Transfer-Encoding: " + te), "te_not_chunked")


def test_te_not_chunked_over_lines():
    parse_bad(req(b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"), "te_not_chunked")


@pytest.mark.parametrize("lines", [
    [b"Transfer-Encoding: chunked, chunked"],
    [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
    [b"Transfer-Encoding: Chunked, gzip, CHUNKED"],
])
def test_te_chunked_twice(lines):
    parse_bad(req(*lines), "te_chunked_twice")


@pytest.mark.parametrize("te", [
    b"chunked gzip", b"chu\"nked", b"@chunked", b"chunked,", b", chunked", b"gzip,,chunked",
    b"gzip;, chunked", b"gzip;q, chunked", b"gzip;q=, chunked", b'gzip;q="a,b", chunked',
    b'gzip;q="open, chunked', b"chunked, chunked;",
])
def test_te_syntax(te):
    parse_bad(req(b"Transfer-Encoding: " + te), "te_syntax")


@pytest.mark.parametrize("te", [b"chunked, chunked\"", b"chunked, chunked x"])
def test_te_syntax_after_chunked(te):
    parse_bad(req(b"Transfer-Encoding: " + te), "te_syntax")


@pytest.mark.parametrize("line", [b"Host : a", b"Host\t: a", b"X-Foo   : a"])
def test_header_name_space(line):
    parse_bad(req(line, host=False), "header_name_space")


def test_obs_fold():
    parse_bad(req(b"X-Folded: a", b" b"), "obs_fold")
    parse_bad(req(b"X-Folded: a", b"\tb"), "obs_fold")
    parse_bad(req(b"X-Folded: a", b"  continued: x"), "obs_fold")


@pytest.mark.parametrize("value", [
    b"a\x00b", b"\x00", b"a\x01", b"\x1b[31m", b"a\x7fb", b"a\x0bb", b"a\x0cb", b"\x1f",
])
def test_header_value_control_chars(value):
    err = parse_bad(req(b"X-Bad: " + value), "header_value")
    start = len(req()) - 2
    assert start <= err.offset <= start + len(b"X-Bad: ") + len(value) + 2


@pytest.mark.parametrize("line", [
    b"X-\x00: a", b"X\x01Y: a", b"\x7fX: a", b"X(Y): a", b"X/Y: a", b"X@: a", b"X[1]: a",
    b"X\"Y: a", b"X,Y: a", b"X;Y: a", b"X=Y: a", b"X?Y: a", b"X{}: a", b"\xc3\xa9: a",
    b": a", b"NoColon", b"X-\x80: a",
])
def test_header_name_invalid(line):
    parse_bad(req(line), "header_name")


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX\r: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
    b"GET / HTTP/1.1\r\rHost: a\r\n\r\n",
    b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\n\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
])
def test_bare_cr(data):
    parse_bad(data, "bare_cr")


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\n",
    b"GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: b\n\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\nX: b\r\n\r\n",
    b"GET / HTTP/1.1\n\n",
    b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
])
def test_bare_lf(data):
    parse_bad(data, "bare_lf")


@pytest.mark.parametrize("method", [
    b"GE(T", b"GE\x00T", b"GE/T", b"G\xc3\x89T", b"GET:", b"[GET]", b"GE\x7fT", b"GE\tT",
    b"GE@T", b"GE,T",
])
def test_method_invalid(method):
    parse_bad(method + b" / HTTP/1.1\r\nHost: a\r\n\r\n", "method")


def test_method_empty():
    parse_bad(b" / HTTP/1.1\r\nHost: a\r\n\r\n", "method")


@pytest.mark.parametrize("target", [
    b"/a\x00b", b"/a\x01", b"/a\tb", b"/\x7f", b"/caf\xc3\xa9", b"/\x80", b"/\x1b",
])
def test_target_invalid(target):
    parse_bad(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n", "target")


@pytest.mark.parametrize("line", [
    b"GET  / HTTP/1.1",
    b"GET /  HTTP/1.1",
    b"GET / HTTP/1.1 extra",
    b"GET /",
    b"GET / ",
    b"GET / HTTP/1.0 ",
    b"GET",
    b"GET ",
])
def test_request_line_spacing(line):
    err = parse_bad(line + b"\r\nHost: a\r\n\r\n", "request_line")
    assert err.offset <= len(line) + 2


@pytest.mark.parametrize("version", [
    b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b"HTTP/1.10", b"HTTP/1.1x",
    b"HTTP/1", b"HTTP/11", b"HTTPS/1.1", b"HTTP/1.1\t", b"ICE/1.0", b"HTTP/1.1/",
])
def test_version_invalid(version):
    parse_bad(b"GET / " + version + b"\r\nHost: a\r\n\r\n", "version")


def test_host_missing_in_http11():
    parse_bad(b"GET / HTTP/1.1\r\n\r\n", "host")
    parse_bad(b"GET / HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n\r\n", "host")


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_host_twice(version):
    parse_bad(b"GET / HTTP/" + version + b"\r\nHost: a\r\nhost: a\r\n\r\n", "host")
    parse_bad(b"GET / HTTP/" + version + b"\r\nHost: a\r\nX: y\r\nHOST: b\r\n\r\n", "host")


def test_host_variants_accepted():
    for value in (b"example.com", b"example.com:8080", b"[::1]:80", b"", b"EXAMPLE.COM"):
        r = parse_ok(b"GET / HTTP/1.1\r\nhOsT: " + value + b"\r\n\r\n")
        assert r.headers == [(b"hOsT", value)]


def test_parse_error_is_value_error_with_message():
    with pytest.raises(ValueError) as info:
        http.parse_request(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
    err = info.value
    assert isinstance(err, http.ParseError)
    assert err.code == "content_length"
    assert str(err)
    msgs = set()
    for data in (b"GE(T / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.7\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\n\r\n"):
        with pytest.raises(http.ParseError) as info:
            http.parse_request(data)
        msgs.add(str(info.value))
    assert len(msgs) == 3, "each problem has its own message"


def test_error_codes_table():
    assert "none" in http.ERROR_CODES
    for code in ("method", "target", "request_line", "version", "status", "reason",
                 "header_name", "header_name_space", "header_value", "obs_fold", "bare_cr",
                 "bare_lf", "too_many_headers", "head_too_large", "content_length",
                 "content_length_conflict", "cl_and_te", "te_not_chunked", "te_chunked_twice",
                 "te_syntax", "host", "chunk_size", "chunk_ext", "chunk_line_too_long",
                 "chunk_data", "trailer", "trailer_too_large"):
        assert code in http.ERROR_CODES


def test_error_offsets_point_at_the_problem():
    cases = [
        (b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 2, 2),
        (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 5, 5),
        (b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", 16, 24),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", 25, 27),
    ]
    for data, lo, hi in cases:
        with pytest.raises(http.ParseError) as info:
            http.parse_request(data)
        assert lo <= info.value.offset <= hi, (data, info.value.offset)


# --------------------------------------------------------------------------
# Long runs: the scanners take 16 bytes at a time, so put a bad byte at every
# position of a long method, target, name and value.

VALUE_BAD = {b"\x00": "header_value", b"\x01": "header_value", b"\x1f": "header_value",
             b"\x7f": "header_value", b"\n": "bare_lf", b"\r": "bare_cr"}


@pytest.mark.parametrize("bad", sorted(VALUE_BAD))
def test_bad_byte_anywhere_in_a_long_value(bad):
    for pos in range(50):
        value = bytearray(b"v" * 50)
        value[pos:pos + 1] = bad
        parse_bad(req(b"X-Long: " + bytes(value)), VALUE_BAD[bad], step=7)


@pytest.mark.parametrize("good", [b"\t", b"\x80", b"\xff", b" ", b"~", b'"'])
def test_good_byte_anywhere_in_a_long_value(good):
    for pos in range(1, 49):
        value = bytearray(b"v" * 50)
        value[pos:pos + 1] = good
        assert http.parse_request(req(b"X-Long: " + bytes(value))).headers[1][1] == value


@pytest.mark.parametrize("bad", [b"\x00", b"\x01", b"\t", b"\x7f", b"\x80", b"\xff"])
def test_bad_byte_anywhere_in_a_long_target(bad):
    for pos in range(1, 50):
        target = bytearray(b"/" + b"t" * 49)
        target[pos:pos + 1] = bad
        parse_bad(b"GET " + bytes(target) + b" HTTP/1.1\r\nHost: a\r\n\r\n", "target", step=7)


@pytest.mark.parametrize("bad", [b"\x00", b"(", b"@", b"\x80", b"/", b"\x7f"])
def test_bad_byte_anywhere_in_a_long_name(bad):
    for pos in range(50):
        name = bytearray(b"N" * 50)
        name[pos:pos + 1] = bad
        parse_bad(req(bytes(name) + b": v"), "header_name", step=7)


@pytest.mark.parametrize("bad", [b"\x00", b"(", b"@", b"\x80", b"/", b"\x7f", b"\t"])
def test_bad_byte_anywhere_in_a_long_method(bad):
    for pos in range(50):
        method = bytearray(b"M" * 50)
        method[pos:pos + 1] = bad
        parse_bad(bytes(method) + b" / HTTP/1.1\r\nHost: a\r\n\r\n", "method", step=7)


def test_long_names_with_special_lengths():
    # Names as long as the framing ones, but different.
    for name in (b"Hosx", b"Expecx", b"Upgradx", b"Connectiox", b"Content-Lengtx",
                 b"Transfer-Encodinx", b"xontent-length", b"Content_Length", b"Content-Length-"):
        r = parse_ok(req(name + b": chunked, gzip, 1x"))
        assert r.content_length is None and r.chunked is False
        assert r.headers[1] == (name, b"chunked, gzip, 1x")


def test_many_headers_stack_and_heap_arrays():
    for n in (127, 128, 129, 300):
        data = req(*[b"X-%d: %d" % (i, i) for i in range(n - 1)])
        r = parse_ok(data, max_headers=n)
        assert len(r.headers) == n
        assert r.headers[-1] == (b"X-%d" % (n - 2), b"%d" % (n - 2))
        parse_bad(data, "too_many_headers", max_headers=n - 1)


# --------------------------------------------------------------------------
# RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing,
# and the connection must close after it.


@pytest.mark.parametrize("te", [b"chunked", b"gzip, chunked"])
def test_http10_transfer_encoding_is_not_kept_alive(te):
    r = parse_ok(b"POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
                 b"Transfer-Encoding: " + te + b"\r\n\r\n")
    assert r.chunked is True
    assert r.keep_alive is False


def test_upgrade_is_ignored_in_http10():
    data = b"GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert http.parse_request(data).upgrade is False
    data11 = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert http.parse_request(data11).upgrade is True
