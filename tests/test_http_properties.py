"""Property tests: fastlb.http against the reference parser in http_reference.py.

Valid messages are generated from strategies and must parse to the same
fields; mutated messages (bytes inserted, deleted or replaced) must be valid
or invalid for both, with the same fields when valid; chunked bodies cut at
random places must decode back to the original.

The runs are derandomized so that CI is repeatable; set
FASTLB_HYPOTHESIS_RANDOM=1 to explore with fresh random seeds, and
FASTLB_HYPOTHESIS_EXAMPLES=N to run N examples per test (default 300)."""

from __future__ import annotations

import os

import http_reference as ref
from http_reference import REQUEST_FIELDS, RESPONSE_FIELDS, check_prefixes, outcome
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fastlb import http

SETTINGS = settings(
    max_examples=int(os.environ.get("FASTLB_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    derandomize=not os.environ.get("FASTLB_HYPOTHESIS_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

TCHARS = sorted(ref.TCHAR)
TARGET_CHARS = sorted(ref.TARGET_CHARS)
VALUE_CHARS = sorted(ref.VALUE_CHARS)


def _bytes_from(alphabet, min_size=0, max_size=20):
    """Byte strings over alphabet (a list of byte values)."""
    chars = "".join(map(chr, alphabet))
    return st.text(alphabet=chars, min_size=min_size, max_size=max_size).map(
        lambda t: t.encode("latin-1"))


tokens = _bytes_from(TCHARS, 1, 12) | _bytes_from(TCHARS, 13, 40)
methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH",
                     b"CONNECT", b"TRACE"]),
    tokens,
)
targets = st.one_of(
    st.just(b"*"),
    _bytes_from(TARGET_CHARS, 0, 70).map(lambda t: b"/" + t),
    _bytes_from(TARGET_CHARS, 1, 70),
)
ows = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t "])
# Field values: visible chars, obs-text and inner SP/HTAB; OWS around them.
values = st.tuples(ows, _bytes_from(VALUE_CHARS, 0, 70), ows).map(b"".join)
# Random field names steer clear of the ones with framing meaning.
SPECIAL = {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect",
           b"upgrade"}
names = tokens.filter(lambda n: n.lower() not in SPECIAL)
plain_headers = st.lists(st.tuples(names, values), max_size=8)


def _cased(name: bytes):
    return st.sampled_from([name, name.lower(), name.upper()])


@st.composite
def connection_values(draw):
    toks = draw(st.lists(st.sampled_from([b"close", b"keep-alive", b"Upgrade", b"foo",
                                          b"Close", b"KEEP-ALIVE", b"te"]), max_size=3))
    sep = draw(st.sampled_from([b",", b", ", b" , ", b",\t"]))
    return sep.join(toks)


@st.composite
def framing_headers(draw, is_request: bool):
    """Content-Length and/or Transfer-Encoding lines that are valid together."""
    kind = draw(st.sampled_from(["none", "cl", "cl2", "te", "te2"]))
    out = []
    if kind in ("cl", "cl2"):
        n = draw(st.integers(0, 2**63 - 1) | st.integers(0, 10**6))
        zeros = b"0" * draw(st.integers(0, 3))
        out.append((draw(_cased(b"Content-Length")), zeros + b"%d" % n))
        if kind == "cl2":
            out.append((b"Content-Length", b"%d" % n))
    elif kind in ("te", "te2"):
        codings = draw(st.lists(st.sampled_from([b"gzip", b"deflate", b"br", b"x-custom"]),
                                max_size=2))
        final = [draw(st.sampled_from([b"chunked", b"Chunked"]))]
        if not is_request and draw(st.booleans()):
            final = [] if codings else [b"gzip"]
        te = codings + final
        if kind == "te2" and len(te) > 1:
            out.append((b"Transfer-Encoding", b", ".join(te[:1])))
            out.append((b"transfer-encoding", b",".join(te[1:])))
        else:
            out.append((draw(_cased(b"Transfer-Encoding")), b", ".join(te)))
    return out


@st.composite
def _interleave(draw, lines, ordered):
    """Insert the ordered lines among the others, keeping their order."""
    out = list(lines)
    positions = sorted(draw(st.lists(st.integers(0, len(out)), min_size=len(ordered),
                                     max_size=len(ordered))))
    for k, (pos, line) in enumerate(zip(positions, ordered, strict=True)):
        out.insert(pos + k, line)
    return out


@st.composite
def requests(draw):
    minor = draw(st.sampled_from([0, 1]))
    hdrs = list(draw(plain_headers))
    if minor == 1 or draw(st.booleans()):
        hdrs.append((draw(_cased(b"Host")), draw(values)))
    for _ in range(draw(st.integers(0, 2))):
        hdrs.append((draw(_cased(b"Connection")), draw(connection_values())))
    if draw(st.booleans()):
        hdrs.append((b"Expect", draw(st.sampled_from([b"100-continue", b"100-Continue",
                                                      b"nothing"]))))
    if draw(st.booleans()):
        hdrs.append((b"Upgrade", draw(st.sampled_from([b"websocket", b"h2c", b""]))))
    hdrs = draw(_interleave(draw(st.permutations(hdrs)), draw(framing_headers(True))))
    lead = b"\r\n" * draw(st.integers(0, 2))
    line = b"%s %s HTTP/1.%d" % (draw(methods), draw(targets), minor)
    head = lead + line + b"\r\n" + b"".join(n + b":" + v + b"\r\n" for n, v in hdrs) + b"\r\n"
    tail = draw(st.binary(max_size=10))
    return head + tail


@st.composite
def responses(draw):
    minor = draw(st.sampled_from([0, 1]))
    status = draw(st.integers(100, 999))
    reason = draw(_bytes_from(sorted(ref.REASON_CHARS), 0, 20))
    hdrs = list(draw(plain_headers))
    for _ in range(draw(st.integers(0, 2))):
        hdrs.append((b"Connection", draw(connection_values())))
    hdrs = draw(_interleave(draw(st.permutations(hdrs)), draw(framing_headers(False))))
    line = b"HTTP/1.%d %d %s" % (minor, status, reason)
    head = line + b"\r\n" + b"".join(n + b":" + v + b"\r\n" for n, v in hdrs) + b"\r\n"
    return head + draw(st.binary(max_size=10))


MUTATION_BYTES = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b",", b";", b"\x7f",
                  b"\x80", b"\xff", b"a", b"0", b"/", b"(", b"\"", b"\x01", b"\x1f"]


@st.composite
def mutated(draw, messages):
    data = bytearray(draw(messages))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "insert", "replace", "delete"]))
        piece = draw(st.sampled_from(MUTATION_BYTES) | st.binary(min_size=1, max_size=2))
        if op == "insert":
            data[pos:pos] = piece
        elif op == "replace":
            data[pos:pos + len(piece)] = piece
        else:
            del data[pos:pos + 1]
    # Make sure the head can end, so that both sides give a final answer.
    return bytes(data) + b"\r\n\r\n"


# Known difference in naming an error (see test_http_parser.py,
# test_te_syntax_after_chunked): fastlb reports a second "chunked" before it
# checks the rest of that list element, so 'chunked, chunked"' is
# te_chunked_twice there and te_syntax here.  Both reject the message.
KNOWN_CODE_DIFFERENCES: set[tuple[str, str]] = set()


def _agree(parse, ref_parse, fields, data, **kw):
    got = outcome(parse, data, fields, **kw)
    exp = outcome(ref_parse, data, fields, **kw)
    assert (got[0] == "ok") == (exp[0] == "ok"), (data, got, exp)
    if got[0] == "error" and exp[0] == "error":
        # Both report errors in the order of the bytes, so they name the same one.
        assert got == exp or (got[1], exp[1]) in KNOWN_CODE_DIFFERENCES, (data, got, exp)
    elif got[0] == "ok":
        assert got == exp, data
    return got


# --------------------------------------------------------------------------
# Requests


@SETTINGS
@given(requests())
def test_valid_requests_match_reference(data):
    got = check_prefixes(http.parse_request, data, REQUEST_FIELDS)
    assert got[0] == "ok", (data, got)
    assert outcome(ref.parse_request, data, REQUEST_FIELDS) == got


@SETTINGS
@given(mutated(requests()))
@example(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
def test_mutated_requests_agree_with_reference(data):
    _agree(http.parse_request, ref.parse_request, REQUEST_FIELDS, data)


@SETTINGS
@given(requests(), st.integers(1, 40))
def test_request_limits_agree(data, max_headers):
    got = _agree(http.parse_request, ref.parse_request, REQUEST_FIELDS, data,
                 max_headers=max_headers)
    r = ref.parse_request(data)
    limit = r["header_bytes"]
    for lim in (limit - 1, limit, limit + 1):
        got = outcome(http.parse_request, data, REQUEST_FIELDS, max_header_bytes=lim)
        assert (got[0] == "ok") == (lim >= limit), (lim, got)


@settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 3))
@given(st.lists(requests(), min_size=1, max_size=4))
def test_pipelined_requests(msgs):
    """Back-to-back heads (bodies dropped, tails replaced) parse one by one."""
    heads = [m[:ref.parse_request(m)["header_bytes"]] for m in msgs]
    heads = [h for h in heads
             if ref.parse_request(h)["content_length"] in (None, 0)
             and not ref.parse_request(h)["chunked"]]
    rest = b"".join(heads)
    for h in heads:
        r = http.parse_request(rest)
        assert r.header_bytes == len(h)
        rest = rest[r.header_bytes:]
    assert rest == b""


# Framing fields built from pieces that are often, but not always, valid.
TE_ATOMS = [b"chunked", b"Chunked", b"gzip", b"identity", b"x", b",", b", ", b";", b"=",
            b" ", b"\t", b'"', b'"a,b"', b'"q\\"x"', b"\\", b"q=1", b"a", b";q=1", b'=""']
CL_ATOMS = [b"0", b"1", b"7", b"00", b" ", b",", b"+", b"-", b"x", b"9223372036854775807",
            b"9223372036854775808", b"\t"]
CONN_ATOMS = [b"close", b"keep-alive", b"upgrade", b"CLOSE", b",", b" ", b"closer", b"x"]


def _joined(atoms, max_size=6):
    return st.lists(st.sampled_from(atoms), max_size=max_size).map(b"".join)


@st.composite
def framing_fuzz(draw, line=b"POST / HTTP/1.1"):
    lines = []
    for _ in range(draw(st.integers(0, 2))):
        lines.append(b"Transfer-Encoding: " + draw(_joined(TE_ATOMS)))
    for _ in range(draw(st.integers(0, 2))):
        lines.append(b"Content-Length: " + draw(_joined(CL_ATOMS, 3)))
    for _ in range(draw(st.integers(0, 2))):
        lines.append(b"Connection: " + draw(_joined(CONN_ATOMS)))
    if draw(st.booleans()):
        lines.append(b"Upgrade: x")
    lines.insert(draw(st.integers(0, len(lines))), b"Host: h")
    lines = draw(st.permutations(lines))
    return b"\r\n".join([line, *lines]) + b"\r\n\r\n"


@SETTINGS
@given(framing_fuzz())
def test_framing_fields_agree_with_reference(data):
    _agree(http.parse_request, ref.parse_request, REQUEST_FIELDS, data)


@SETTINGS
@given(framing_fuzz(line=b"HTTP/1.1 200 OK"), st.sampled_from([b"GET", b"HEAD"]))
def test_response_framing_fields_agree_with_reference(data, method):
    _agree(http.parse_response, ref.parse_response, RESPONSE_FIELDS, data,
           request_method=method)


# --------------------------------------------------------------------------
# Responses


@SETTINGS
@given(responses(), st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"POST"]))
def test_valid_responses_match_reference(data, method):
    got = check_prefixes(http.parse_response, data, RESPONSE_FIELDS, request_method=method)
    assert got[0] == "ok", (data, got)
    assert outcome(ref.parse_response, data, RESPONSE_FIELDS, request_method=method) == got


@SETTINGS
@given(mutated(responses()))
def test_mutated_responses_agree_with_reference(data):
    _agree(http.parse_response, ref.parse_response, RESPONSE_FIELDS, data)


# --------------------------------------------------------------------------
# Chunked bodies


chunk_exts = st.sampled_from([b"", b";a", b";a=b", b'; name="v v"', b" ;x=1;y"])
trailer_lists = st.lists(st.tuples(names, values), max_size=3)


@st.composite
def chunked_bodies(draw):
    body = draw(st.binary(max_size=600))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body))), max_size=8))))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if body[a:b]]
    ext = draw(chunk_exts)
    trailers = draw(trailer_lists)
    hexcase = draw(st.sampled_from([b"%x", b"%X", b"0%x"]))
    out = bytearray()
    for c in chunks:
        out += hexcase % len(c) + ext + b"\r\n" + c + b"\r\n"
    out += b"0" + ext + b"\r\n"
    for n, v in trailers:
        out += n + b":" + v + b"\r\n"
    out += b"\r\n"
    return body, bytes(out)


@SETTINGS
@given(chunked_bodies(), st.binary(max_size=20), st.data())
def test_chunked_roundtrip_random_feeds(body_and_wire, tail, data):
    body, wire = body_and_wire
    stream = wire + tail
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=12))))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    dec = http.ChunkedDecoder()
    out = bytearray()
    done_at = None
    for i, p in enumerate(pieces):
        chunk, done = dec.feed(p)
        if done_at is not None:
            assert chunk == b""
        out += chunk
        if done and done_at is None:
            done_at = i
    assert dec.done
    assert bytes(out) == body
    assert dec.unused == tail
    assert ref.decode_chunked(stream) == (body, tail)


@SETTINGS
@given(chunked_bodies())
def test_chunked_byte_by_byte(body_and_wire):
    body, wire = body_and_wire
    dec = http.ChunkedDecoder()
    out = bytearray()
    for i in range(len(wire)):
        chunk, done = dec.feed(wire[i:i + 1])
        out += chunk
        assert done is (i == len(wire) - 1)
    assert bytes(out) == body and dec.unused == b""


@st.composite
def mutated_chunked(draw):
    _, wire = draw(chunked_bodies())
    data = bytearray(wire)
    for _ in range(draw(st.integers(1, 2))):
        pos = draw(st.integers(0, len(data)))
        piece = draw(st.sampled_from([*MUTATION_BYTES, b"g", b"f", b"="]))
        if draw(st.booleans()):
            data[pos:pos] = piece
        else:
            data[pos:pos + len(piece)] = piece
    return bytes(data)


EXT_ATOMS = [b";", b"=", b" ", b"\t", b"a", b"B9", b'"', b'"x y"', b"\\", b"\r", b"\n", b",",
             b"\x00", b"\x7f", b"\x80", b"!"]
TRAILER_ATOMS = [b"X", b"a-b", b":", b" ", b"\t", b"v", b"\x00", b"\x80", b"\r", b"\n",
                 b"\r\n", b"(", b"\x7f"]


@st.composite
def chunked_fuzz(draw):
    size = draw(st.sampled_from([b"5", b"05", b"0005", b"5", b"", b"g", b"-5"]))
    ext = draw(_joined(EXT_ATOMS, 5))
    trailer = draw(_joined(TRAILER_ATOMS, 6))
    last = draw(st.sampled_from([b"0", b"00", b"0;z"]))
    return size + ext + b"\r\nhello\r\n" + last + b"\r\n" + trailer + b"\r\n\r\nNEXT"


def _chunked_outcome(data, **kw):
    dec = http.ChunkedDecoder(**kw)
    try:
        out, done = dec.feed(data)
        got = ("ok", out, dec.unused) if done else ("incomplete", out)
    except http.ParseError as e:
        got = ("error", e.code)
    try:
        r = ref.decode_chunked(data, **kw)
        exp = ("incomplete",) if r is None else ("ok", *r)
    except ref.RefError as e:
        exp = ("error", e.code)
    return got, exp


@SETTINGS
@given(chunked_fuzz(), st.sampled_from([16, 20, 4096]), st.sampled_from([0, 6, 65536]))
def test_chunk_lines_and_trailers_agree_with_reference(data, max_line, max_trailer):
    got, exp = _chunked_outcome(data, max_line=max_line, max_trailer=max_trailer)
    if exp[0] == "ok" or got[0] == "ok" or (exp[0] == got[0] == "error"):
        assert got == exp, data


@SETTINGS
@given(mutated_chunked())
def test_mutated_chunked_agrees_with_reference(data):
    dec = http.ChunkedDecoder()
    try:
        out, done = dec.feed(data)
        got = ("ok", out, dec.unused) if done else ("incomplete", out)
    except http.ParseError as e:
        got = ("error", e.code)
    try:
        r = ref.decode_chunked(data)
        exp = ("incomplete",) if r is None else ("ok", *r)
    except ref.RefError as e:
        exp = ("error", e.code)
    # An incomplete body may hide an error the other side has already seen;
    # a complete valid body must be the same for both.
    if exp[0] == "ok" or got[0] == "ok" or (exp[0] == got[0] == "error"):
        assert got == exp, data
