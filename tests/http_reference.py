"""A small pure-Python reference for the HTTP/1.1 head parser and the chunked
decoder of fastlb.http, written for readability rather than speed.

It follows the same strict rules (RFC 9110 / RFC 9112) as csrc/http1.c and
returns plain dicts with the fields of fastlb.http.Request / Response, or None
while a head is incomplete.  Malformed input raises RefError whose `code` is
one of fastlb.http.ERROR_CODES.

The property tests check fastlb against it; the example tests check both of
them against hand-written expectations, so the reference is itself tested.

Errors are reported in the order of the bytes, as a one-pass parser meets
them (the first offending byte of the first offending line; framing checks
when their field line ends; Host and the final coding when the head ends), so
the property tests can compare error codes too.  Only the first
max_header_bytes bytes are looked at.  The reference reads a head line by
line and may answer None where fastlb already sees an error in an unfinished
line; the tests allow that.

Where the RFCs leave room, this reference takes the strict reading:
  * a bare CR or bare LF anywhere in the head is an error (no LF-only lines);
  * obs-fold (a field line starting with SP/HTAB) is an error;
  * Content-Length is 1*DIGIT (no lists), value < 2**63; repeated identical
    field lines are fine, differing ones conflict;
  * Content-Length together with Transfer-Encoding is an error, in requests
    and in responses;
  * Transfer-Encoding is a list of tokens with optional parameters; an empty
    list element or an empty field value is a syntax error; "chunked" twice is
    an error; in a request the final coding must be chunked;
  * several Host lines are an error, missing Host is an error in HTTP/1.1;
  * empty lines (CRLF) before a request line are skipped, not before a
    status line;
  * a status line may lack the SP before an empty reason ("HTTP/1.1 200").
"""

from __future__ import annotations

import re

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                  b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# request-target: any visible ASCII byte (no SP, no CTL, no DEL, no obs-text).
TARGET_CHARS = frozenset(range(0x21, 0x7F))
# field-value bytes: HTAB, SP, VCHAR, obs-text.  Not NUL, CTLs or DEL.
VALUE_CHARS = frozenset([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
REASON_CHARS = VALUE_CHARS
OWS = b" \t"

VERSIONS = {b"HTTP/1.0": (1, 0), b"HTTP/1.1": (1, 1)}
INT64_MAX = 2**63 - 1

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# transfer-coding = token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )
TRANSFER_CODING = re.compile(
    rb"(" + _TOKEN + rb")(?:[ \t]*;[ \t]*" + _TOKEN + rb"[ \t]*=[ \t]*(?:"
    + _TOKEN + rb"|" + _QUOTED + rb"))*\Z")
# chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
CHUNK_EXT = re.compile(
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED
    + rb"))?)*\Z")
HEXDIG = frozenset(b"0123456789abcdefABCDEF")


class RefError(ValueError):
    def __init__(self, code: str, offset: int = 0):
        super().__init__(f"{code} at byte {offset}")
        self.code = code
        self.offset = offset


# --------------------------------------------------------------------------
# Lines.  A head is cut into lines at each CRLF; a CR or LF left inside a
# line is a stray (bare) one, reported where it stands, so errors come out in
# the order of the bytes, as a one-pass parser finds them.


def _stray(c: int, at: int):
    """Raise bare_cr / bare_lf when byte c (at offset at) is CR / LF."""
    if c == 0x0D:
        raise RefError("bare_cr", at)
    if c == 0x0A:
        raise RefError("bare_lf", at)


def _head_lines(data: bytes, start: int, max_head: int):
    """Yield (offset, content) for each line of the head from start, the
    final empty line included (content b"").  Only the first max_head bytes
    are looked at.  Raises _Incomplete when the window holds no further
    complete line, after which the caller decides between None and
    head_too_large."""
    window = min(len(data), max_head)
    pos = start
    while True:
        crlf = data.find(b"\r\n", pos, window)
        if crlf < 0:
            break
        yield pos, data[pos:crlf]
        pos = crlf + 2
    # No further CRLF.  A bare LF, or a CR followed by another byte, already
    # dooms the line: hand it over up to that byte, to have it rejected (as
    # that byte, or as an earlier one).
    rest = data[pos:window]
    for k, c in enumerate(rest):
        if c == 0x0A or (c == 0x0D and k + 1 < len(rest)):
            yield pos, rest[:k + 1]
            raise AssertionError("a line with a bare CR or LF was accepted")
    raise _Incomplete(pos)


class _Incomplete(Exception):
    pass


def _skip_empty_lines(data: bytes, max_head: int) -> int:
    """RFC 9112 2.2: ignore CRLFs received before the request-line."""
    i = 0
    while data.startswith(b"\r\n", i) and i + 2 <= max_head:
        i += 2
    return i


# --------------------------------------------------------------------------
# Start lines


def _request_line(off: int, line: bytes):
    """method SP target SP HTTP-version, with exactly two single spaces."""
    i = 0
    while i < len(line) and line[i] in TCHAR:
        i += 1
    if i == len(line):  # the line ends inside the method
        raise RefError("request_line" if i else "method", off + i)
    if i == 0 or line[i] != 0x20:
        _stray(line[i], off + i)
        raise RefError("method", off + i)
    method = line[:i]
    j = i + 1
    while j < len(line) and line[j] in TARGET_CHARS:
        j += 1
    if j == len(line) or (j == i + 1 and line[j] == 0x20):  # no target, or "  "
        raise RefError("request_line", off + j)
    if line[j] != 0x20:
        _stray(line[j], off + j)
        raise RefError("target", off + j)
    target = line[i + 1:j]
    version = line[j + 1:]
    if version[:8] in VERSIONS:
        if len(version) > 8:
            if version[8] == 0x20:  # a fourth part
                raise RefError("request_line", off + j + 9)
            _stray(version[8], off + j + 9)
            raise RefError("version", off + j + 9)
        return method, target, VERSIONS[version]
    if not version:
        raise RefError("request_line", off + j + 1)
    for k, c in enumerate(version):  # tell a bad version from a bad line
        if c == 0x20:
            raise RefError("request_line", off + j + 1 + k)
        _stray(c, off + j + 1 + k)
    raise RefError("version", off + j + 1)


def _status_line(off: int, line: bytes):
    """HTTP-version SP 3DIGIT [SP reason-phrase]; status 100-999."""
    if line[:8] not in VERSIONS:
        if line:
            _stray(line[0], off)
        raise RefError("version", off)
    if line[8:9] != b" ":
        if line[8:9]:
            _stray(line[8], off + 8)
        raise RefError("version", off + 8)
    for k in range(9, 12):
        c = line[k] if k < len(line) else None
        if c is None or not 0x30 <= c <= 0x39 or (k == 9 and c == 0x30):
            if c is not None:
                _stray(c, off + k)
            raise RefError("status", off + k)
    rest = line[12:]
    if rest and rest[0] != 0x20:
        _stray(rest[0], off + 12)
        raise RefError("status", off + 12)
    reason = rest[1:]
    for k, c in enumerate(reason):
        if c not in REASON_CHARS:
            _stray(c, off + 13 + k)
            raise RefError("reason", off + 13 + k)
    return VERSIONS[line[:8]], int(line[9:12]), reason


# --------------------------------------------------------------------------
# Field lines and framing


def _field_line(off: int, line: bytes):
    """field-name ":" OWS field-value OWS.  Returns (name, stripped value)."""
    if line[0] in OWS:
        raise RefError("obs_fold", off)
    i = 0
    while i < len(line) and line[i] in TCHAR:
        i += 1
    if i < len(line) and line[i] == 0x3A and i > 0:
        name = line[:i]
    elif i < len(line) and line[i] in OWS and i > 0:
        k = i
        while k < len(line) and line[k] in OWS:
            k += 1
        colon = k < len(line) and line[k] == 0x3A
        raise RefError("header_name_space" if colon else "header_name", off + i)
    else:
        if i < len(line):
            _stray(line[i], off + i)
        raise RefError("header_name", off + i)
    for k in range(i + 1, len(line)):
        if line[k] not in VALUE_CHARS:
            _stray(line[k], off + k)
            raise RefError("header_value", off + k)
    return name, line[i + 1:].strip(OWS)


def _tokens(values) -> list[bytes]:
    """Lower-cased elements of a comma list (Connection), empties dropped."""
    out = []
    for v in values:
        for item in v.split(b","):
            item = item.strip(OWS).lower()
            if item:
                out.append(item)
    return out


def _fields(lines, *, max_headers: int):
    """Parse field lines in order, up to the empty line; check framing as
    each line ends.  Returns (headers, content_length, transfer codings or
    None, count of Host lines, end of the head)."""
    headers = []
    content_length = None
    codings = None  # transfer codings so far, None when no Transfer-Encoding
    hosts = 0
    for off, line in lines:
        if not line:
            return headers, content_length, codings, hosts, off + 2
        name, value = _field_line(off, line)
        if len(headers) == max_headers:
            raise RefError("too_many_headers", off)
        headers.append((name, value))
        lname = name.lower()
        if lname == b"content-length":
            if not value.isdigit() or int(value) > INT64_MAX:
                raise RefError("content_length", off)
            if content_length is not None and int(value) != content_length:
                raise RefError("content_length_conflict", off)
            if codings is not None:
                raise RefError("cl_and_te", off)
            content_length = int(value)
        elif lname == b"transfer-encoding":
            codings = codings or []
            for item in value.split(b","):
                m = TRANSFER_CODING.match(item.strip(OWS))
                if m is None:
                    raise RefError("te_syntax", off)
                coding = m.group(1).lower()
                if coding == b"chunked" and b"chunked" in codings:
                    raise RefError("te_chunked_twice", off)
                codings.append(coding)
            if content_length is not None:
                raise RefError("cl_and_te", off)
        elif lname == b"host":
            hosts += 1
            if hosts > 1:
                raise RefError("host", off)
    raise AssertionError("not reached: _head_lines ends with the empty line")


def _values(headers, name: bytes):
    return [v for k, v in headers if k.lower() == name]


def _keep_alive(version, connection, codings) -> bool:
    """HTTP/1.1 persists unless Connection lists close; HTTP/1.0 only if it
    lists keep-alive (and not close), and never with Transfer-Encoding, which
    an HTTP/1.0 message cannot frame (RFC 9112 6.1)."""
    if b"close" in connection:
        return False
    if version == (1, 0):
        return b"keep-alive" in connection and codings is None
    return True


# --------------------------------------------------------------------------
# Public entry points


def _run(data: bytes, max_head: int, is_request: bool, max_headers: int):
    """Parse the start line and the field lines of a head.  Returns
    (start-line fields, _fields result), or None while incomplete."""
    start = _skip_empty_lines(data, max_head) if is_request else 0
    lines = _head_lines(data, start, max_head)
    try:
        off, line = next(lines)
        first = _request_line(off, line) if is_request else _status_line(off, line)
        return first, _fields(lines, max_headers=max_headers)
    except _Incomplete:
        # Only the first max_head bytes count: if they do not hold the head,
        # it is too large.
        if len(data) >= max_head:
            raise RefError("head_too_large", max_head) from None
        return None


def parse_request(data, *, max_header_bytes: int = 65536, max_headers: int = 100):
    """Parse a request head.  Returns a dict of the Request fields, or None
    while incomplete.  Raises RefError."""
    data = bytes(data)
    r = _run(data, max_header_bytes, True, max_headers)
    if r is None:
        return None
    (method, target, version), (headers, cl, codings, hosts, end) = r
    chunked = bool(codings) and codings[-1] == b"chunked"
    if codings is not None and not chunked:
        raise RefError("te_not_chunked", end - 2)
    if version == (1, 1) and hosts == 0:
        raise RefError("host", end - 2)
    connection = _tokens(_values(headers, b"connection"))
    return {
        "method": method,
        "target": target,
        "version": version,
        "headers": headers,
        "header_bytes": end,
        "content_length": cl,
        "chunked": chunked,
        "keep_alive": _keep_alive(version, connection, codings),
        "expect_continue": any(v.lower() == b"100-continue" for v in _values(headers, b"expect")),
        # RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored.
        "upgrade": version == (1, 1) and b"upgrade" in connection
        and bool(_values(headers, b"upgrade")),
    }


def has_body(status: int, request_method: bytes) -> bool:
    """RFC 9110 6.4.1 / RFC 9112 6.3."""
    if status < 200 or status in (204, 304) or request_method == b"HEAD":
        return False
    return not (request_method == b"CONNECT" and 200 <= status < 300)


def parse_response(data, *, request_method: bytes = b"GET",
                   max_header_bytes: int = 65536, max_headers: int = 100):
    """Parse a response head.  Returns a dict of the Response fields, or None
    while incomplete.  Raises RefError.  A Transfer-Encoding that does not end
    in chunked is valid here: the body then runs until the connection closes."""
    data = bytes(data)
    r = _run(data, max_header_bytes, False, max_headers)
    if r is None:
        return None
    (version, status, reason), (headers, cl, codings, _, end) = r
    chunked = bool(codings) and codings[-1] == b"chunked"
    body = has_body(status, request_method)
    # A body that runs until the connection closes ends persistence.
    delimited = not body or chunked or cl is not None
    connection = _tokens(_values(headers, b"connection"))
    return {
        "status": status,
        "reason": reason,
        "version": version,
        "headers": headers,
        "header_bytes": end,
        "content_length": cl,
        "chunked": chunked,
        "keep_alive": _keep_alive(version, connection, codings) and delimited,
        "has_body": body,
    }


# --------------------------------------------------------------------------
# Chunked bodies


def _partial(line: bytes) -> bytes:
    """An unfinished line, less the CR of its CRLF if that has come."""
    return line[:-1] if line.endswith(b"\r") else line


# One of these, appended to a prefix of a chunk-ext, completes it if anything
# can: the prefix may end after BWS, ";", a name, "=", a token, inside a
# quoted-string or after a backslash in one.
_EXT_COMPLETIONS = (b"", b"a", b";a", b"=a", b'"', b'a"')


def _ext_viable(prefix: bytes) -> bool:
    """Whether prefix is the start of some valid chunk-ext."""
    return any(CHUNK_EXT.match(prefix + c) for c in _EXT_COMPLETIONS)


def _ext_error(ext: bytes, complete: bool):
    """Index of the first byte of ext that no valid chunk-ext could have
    there (len(ext) when a complete ext stops short), or None."""
    if complete and CHUNK_EXT.match(ext):
        return None
    lo, hi = 0, len(ext)  # ext[:lo] is viable; find the first k with ext[:k+1] not
    while lo < hi:
        mid = (lo + hi) // 2
        if _ext_viable(ext[:mid + 1]):
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < len(ext) or complete else None


def _size_line_error(line: bytes, complete: bool):
    """(code, index) of the first error in chunk-size [chunk-ext], or None."""
    i = 0
    while i < len(line) and line[i] in HEXDIG:
        if int(line[:i + 1], 16) > INT64_MAX:
            return "chunk_size", i
        i += 1
    if i == 0:
        return ("chunk_size", 0) if line or complete else None
    if i < len(line) and line[i] not in b"; \t\n":
        return "chunk_size", i  # a stray CR too
    k = _ext_error(line[i:], complete)
    return None if k is None else ("chunk_ext", i + k)


def _size_line(line: bytes, at: int, max_line: int, complete: bool):
    """Check chunk-size [chunk-ext] (line holds no final CRLF; when not
    complete, it is what has arrived so far).  Returns the size, or None for
    an incomplete line.  The line may hold at most max_line bytes besides
    CRs; whichever of a syntax error and the byte over the bound comes first
    is reported."""
    err = _size_line_error(line, complete)
    non_cr = [k for k, c in enumerate(line) if c != 0x0D]
    over = non_cr[max_line] if len(non_cr) > max_line else None
    if over is not None and (err is None or over <= err[1]):
        raise RefError("chunk_line_too_long", at + over)
    if err is not None:
        raise RefError(err[0], at + err[1])
    if not complete:
        return None
    hexdigits = len(line) - len(line.lstrip(b"0123456789abcdefABCDEF"))
    return int(line[:hexdigits], 16)


def _trailer_error(line: bytes, complete: bool):
    """Index of the first byte of trailer field line `line` (no CRLF) that
    breaks field-name ":" field-value, or None."""
    i = 0
    while i < len(line) and line[i] in TCHAR:
        i += 1
    if i == len(line):
        return i if complete else None
    if i == 0 or line[i] != 0x3A:
        return i
    for k in range(i + 1, len(line)):
        if line[k] not in VALUE_CHARS:
            return k
    return None


def decode_chunked(data, *, max_line: int = 4096, max_trailer: int = 65536):
    """Decode a whole chunked body from the start of data.

    Returns (body, unused) where unused are the bytes after the body, or None
    when the body is not complete.  Raises RefError.

    Bounds: a chunk-size line (size and extensions, without CRs) may hold at
    most max_line bytes; the trailer section (its field lines with their
    CRLFs, without the final CRLF) at most max_trailer bytes."""
    data = bytes(data)
    body = bytearray()
    pos = 0
    while True:
        # chunk-size [ chunk-ext ] CRLF
        crlf = data.find(b"\r\n", pos)
        line = data[pos:crlf] if crlf >= 0 else _partial(data[pos:])
        size = _size_line(line, pos, max_line, complete=crlf >= 0)
        if size is None:
            return None
        pos = crlf + 2
        if size == 0:
            break
        # chunk-data CRLF
        body += data[pos:pos + size]
        pos += size
        after = data[pos:pos + 2]
        if after != b"\r\n"[:len(after)]:
            raise RefError("chunk_data", pos)
        if len(after) < 2:
            return None
        pos += 2
    # trailer-section CRLF
    counted = 0  # trailer bytes so far, against max_trailer
    while True:
        crlf = data.find(b"\r\n", pos)
        line = data[pos:crlf] if crlf >= 0 else _partial(data[pos:])
        if crlf == pos:
            return bytes(body), data[pos + 2:]
        complete = crlf >= 0
        if not complete and not line:
            return None
        if line[0] == 0x0D:  # the final CR, but no LF after it
            raise RefError("trailer", pos + 1)
        size = len(line) + 2 if complete else len(data) - pos  # the CR counts
        bad = _trailer_error(line, complete)
        over = max_trailer - counted if counted + size > max_trailer else None
        if over is not None and (bad is None or over <= bad):
            raise RefError("trailer_too_large", pos + over)
        if bad is not None:
            raise RefError("trailer", pos + bad)
        if not complete:
            return None
        counted += size
        pos = crlf + 2


def encode_chunked(chunks, *, trailers=(), ext: bytes = b"") -> bytes:
    """Frame a list of non-empty byte strings as a chunked body."""
    out = bytearray()
    for c in chunks:
        out += b"%x%s\r\n%s\r\n" % (len(c), ext, c)
    out += b"0%s\r\n" % ext
    for name, value in trailers:
        out += name + b": " + value + b"\r\n"
    out += b"\r\n"
    return bytes(out)


# --------------------------------------------------------------------------
# Harness shared by the test modules: run a parser (fastlb's or this one) and
# reduce its answer to a comparable value.

REQUEST_FIELDS = ("method", "target", "version", "headers", "header_bytes", "content_length",
                  "chunked", "keep_alive", "expect_continue", "upgrade")
RESPONSE_FIELDS = ("status", "reason", "version", "headers", "header_bytes", "content_length",
                   "chunked", "keep_alive", "has_body")


def outcome(parse, data, fields, **kw):
    """("ok", {field: value}), ("error", code) or ("incomplete",)."""
    try:
        r = parse(data, **kw)
    except ValueError as e:
        if not hasattr(e, "code"):
            raise
        return ("error", e.code)
    if r is None:
        return ("incomplete",)
    if isinstance(r, dict):
        return ("ok", {k: r[k] for k in fields})
    return ("ok", {k: getattr(r, k) for k in fields})


def prefix_points(n: int, step: int | None = None):
    """Prefix lengths to try for an n-byte input: all of them for small
    inputs, a sample (plus everything near both ends) for large ones."""
    if step is None:
        step = 1 if n <= 4096 else max(1, n // 1024)
    pts = set(range(0, n + 1, step))
    pts.update(range(0, min(n, 64) + 1))
    pts.update(range(max(0, n - 64), n + 1))
    return sorted(pts)


def error_offset(parse, data, **kw):
    """The offset of the error parse raises on data, or None."""
    try:
        parse(data, **kw)
    except ValueError as e:
        if not hasattr(e, "code"):
            raise
        return e.offset
    return None


def check_prefixes(parse, data: bytes, fields, *, step=None, **kw):
    """Parse data whole and then every prefix data[:i] (byte-by-byte arrival).

    A valid head: every prefix shorter than the head is incomplete, every
    longer one gives the same result.  An invalid input: every prefix is
    incomplete or fails with the same code and offset, and once a prefix
    fails, every longer one does.  Also checks that bytearray and memoryview
    inputs give the same answer.  Returns the whole outcome."""
    whole = outcome(parse, data, fields, **kw)
    for kind in (bytearray, memoryview):
        assert outcome(parse, kind(data), fields, **kw) == whole, kind
    offset = error_offset(parse, data, **kw)
    failed_at = None
    for i in prefix_points(len(data), step):
        got = outcome(parse, data[:i], fields, **kw)
        if failed_at is not None:  # once an error is seen, it stays
            assert got == whole, (failed_at, i, data[:i], got)
        if whole[0] == "ok":
            if i < whole[1]["header_bytes"]:
                assert got == ("incomplete",), (i, data[:i], got)
            else:
                assert got == whole, (i, data[:i], got)
        elif whole[0] == "error":
            assert got in (("incomplete",), whole), (i, data[:i], got, whole)
            if got == whole:
                assert error_offset(parse, data[:i], **kw) == offset, (i, data[:i])
                if failed_at is None:
                    failed_at = i
        else:
            assert got == ("incomplete",), (i, data[:i], got)
    return whole
