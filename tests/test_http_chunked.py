"""Example tests of fastlb.http.ChunkedDecoder.  Every case is fed whole and
one byte at a time and checked against the reference decoder."""

from __future__ import annotations

import http_reference as ref
import pytest
from http_reference import encode_chunked

from fastlb import http


def _feed_whole(data: bytes, **kw):
    dec = http.ChunkedDecoder(**kw)
    out, done = dec.feed(data)
    assert type(out) is bytes and type(done) is bool
    assert dec.done is done
    return out, done, dec.unused


def _feed_bytewise(data: bytes, **kw):
    dec = http.ChunkedDecoder(**kw)
    body = bytearray()
    for i in range(len(data)):
        out, done = dec.feed(data[i:i + 1])
        body += out
        assert dec.done is done
        if done:
            return bytes(body), True, dec.unused + data[i + 1:]
    return bytes(body), False, b""


def decode(data: bytes, **kw):
    """Decode whole and byte by byte; both must agree with each other and
    with the reference.  Returns (body, done, unused)."""
    whole = _feed_whole(data, **kw)
    assert _feed_bytewise(data, **kw) == whole
    for kind in (bytearray, memoryview):
        assert _feed_whole(kind(data), **kw) == whole
    expected = ref.decode_chunked(data, **kw)
    if expected is None:
        assert whole[1] is False, "reference says the body is not complete"
    else:
        assert whole == (expected[0], True, expected[1]), "reference disagrees"
    return whole


def decode_ok(data: bytes, **kw):
    body, done, unused = decode(data, **kw)
    assert done
    return body, unused


def decode_bad(data: bytes, code: str, **kw):
    assert code in http.ERROR_CODES
    with pytest.raises(http.ParseError) as info:
        _feed_whole(data, **kw)
    assert info.value.code == code
    with pytest.raises(http.ParseError) as info:
        _feed_bytewise(data, **kw)
    assert info.value.code == code
    with pytest.raises(ref.RefError) as info:
        ref.decode_chunked(data, **kw)
    assert info.value.code == code, "reference disagrees"


# --------------------------------------------------------------------------
# Valid bodies


def test_simple():
    assert decode_ok(b"5\r\nhello\r\n0\r\n\r\n") == (b"hello", b"")


def test_empty_body():
    assert decode_ok(b"0\r\n\r\n") == (b"", b"")


def test_several_chunks():
    data = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n"
    assert decode_ok(data) == (b"Wikipedia in\r\n\r\nchunks.", b"")


def test_hex_sizes():
    for size in (1, 9, 10, 15, 16, 255, 256, 4095, 4096, 65536):
        chunk = bytes(i % 251 for i in range(size))
        for fmt in (b"%x", b"%X", b"000%x"):
            data = fmt % size + b"\r\n" + chunk + b"\r\n0\r\n\r\n"
            if size <= 4096:
                assert decode_ok(data)[0] == chunk
            else:
                assert _feed_whole(data) == (chunk, True, b"")


def test_binary_data_with_crlf_inside():
    chunk = b"\r\n0\r\n\r\n\x00\xff\n\r"
    assert decode_ok(encode_chunked([chunk, chunk])) == (chunk * 2, b"")


def test_last_chunk_with_leading_zeros():
    assert decode_ok(b"3\r\nabc\r\n000\r\n\r\n") == (b"abc", b"")


@pytest.mark.parametrize("ext", [
    b";foo", b";foo=bar", b";a=1;b=2", b"; a = b", b"\t;\tname", b';q="quoted value"',
    b';q="with \\" escape"', b";x=\"\"", b";!#$%&'*+-.^_`|~=token", b" ;a ;b=c",
])
def test_chunk_extensions(ext):
    data = b"5" + ext + b"\r\nhello\r\n0" + ext + b"\r\n\r\n"
    assert decode_ok(data) == (b"hello", b"")


def test_trailers():
    data = b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nExpires:  never \r\nX-Empty:\r\n\r\n"
    assert decode_ok(data) == (b"hello", b"")


def test_unused_bytes_after_the_body():
    nxt = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    body, unused = decode_ok(b"3\r\nabc\r\n0\r\n\r\n" + nxt)
    assert (body, unused) == (b"abc", nxt)
    assert http.parse_request(unused).target == b"/next"
    body, unused = decode_ok(b"3\r\nabc\r\n0\r\nT: 1\r\n\r\nxyz")
    assert (body, unused) == (b"abc", b"xyz")


def test_feed_after_done_goes_to_unused():
    dec = http.ChunkedDecoder()
    assert dec.feed(b"0\r\n\r\nab") == (b"", True)
    assert dec.unused == b"ab"
    assert dec.feed(b"cd") == (b"", True)
    assert dec.unused == b"abcd"
    assert dec.done


def test_not_done_until_final_crlf():
    dec = http.ChunkedDecoder()
    out, done = dec.feed(b"3\r\nabc\r\n0\r\n")
    assert (out, done, dec.done) == (b"abc", False, False)
    out, done = dec.feed(b"X: y\r\n")
    assert (out, done) == (b"", False)
    out, done = dec.feed(b"\r\n")
    assert (out, done, dec.unused) == (b"", True, b"")


def test_partial_chunk_data_is_returned_early():
    dec = http.ChunkedDecoder()
    assert dec.feed(b"a\r\n01234") == (b"01234", False)
    assert dec.feed(b"56789\r") == (b"56789", False)
    assert dec.feed(b"\n0\r\n\r\n") == (b"", True)


def test_empty_feed():
    dec = http.ChunkedDecoder()
    assert dec.feed(b"") == (b"", False)
    assert dec.feed(b"1\r\n") == (b"", False)
    assert dec.feed(b"") == (b"", False)
    assert dec.feed(b"x\r\n0\r\n\r\n") == (b"x", True)


def test_fresh_decoder_state():
    dec = http.ChunkedDecoder()
    assert dec.done is False
    assert dec.unused == b""


def test_max_line_bounds():
    with pytest.raises(ValueError):
        http.ChunkedDecoder(max_line=0)
    line = b"5;" + b"x" * 100
    assert decode_ok(line + b"\r\nhello\r\n0\r\n\r\n", max_line=200)[0] == b"hello"
    decode_bad(line + b"\r\nhello\r\n0\r\n\r\n", "chunk_line_too_long", max_line=50)
    # Without an end of line in sight, too long is found early.
    decode_bad(b"5;" + b"x" * 10_000, "chunk_line_too_long", max_line=4096)


def test_default_max_line():
    ok = b"1;" + b"e" * 3000 + b"\r\nx\r\n0\r\n\r\n"
    assert _feed_whole(ok) == (b"x", True, b"")
    bad = b"1;" + b"e" * 5000 + b"\r\nx\r\n0\r\n\r\n"
    with pytest.raises(http.ParseError) as info:
        _feed_whole(bad)
    assert info.value.code == "chunk_line_too_long"


def test_max_trailer_bounds():
    trailer = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 50) for i in range(20))
    data = b"0\r\n" + trailer + b"\r\n"
    assert decode_ok(data, max_trailer=4000) == (b"", b"")
    decode_bad(data, "trailer_too_large", max_trailer=500)
    with pytest.raises(http.ParseError) as info:
        _feed_whole(b"0\r\n" + b"X: y\r\n" * 20_000)
    assert info.value.code == "trailer_too_large"


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("data", [
    b"g\r\nx\r\n0\r\n\r\n",
    b"\r\n",
    b"-1\r\nx\r\n",
    b"+1\r\nx\r\n",
    b" 1\r\nx\r\n",
    b"0x5\r\nhello\r\n",
    b"5x\r\nhello\r\n",
    b";ext\r\n",
    b"5\r\nhello\r\nz\r\n",
    b"10000000000000000\r\n",
    b"fffffffffffffffff\r\n",
    b"123456789abcdef012345\r\n",
])
def test_chunk_size_invalid(data):
    decode_bad(data, "chunk_size")


@pytest.mark.parametrize("ext", [
    b";", b";=x", b";a=", b';a="unterminated', b";a b", b";a=b c", b" x", b";a=\x00", b";a@",
    b";a=\"\x01\"", b";a==b",
])
def test_chunk_ext_invalid(ext):
    decode_bad(b"5" + ext + b"\r\nhello\r\n0\r\n\r\n", "chunk_ext")


@pytest.mark.parametrize("data", [
    b"3\r\nhello\r\n0\r\n\r\n",
    b"3\r\nab\r\n0\r\n\r\n",
    b"3\r\nabc\n0\r\n\r\n",
    b"3\r\nabc\r0\r\n\r\n",
    b"3\r\nabcxy0\r\n\r\n",
])
def test_chunk_data_not_followed_by_crlf(data):
    decode_bad(data, "chunk_data")


@pytest.mark.parametrize("trailer", [
    b"No colon\r\n",
    b"X : y\r\n",
    b"X: y\x00\r\n",
    b"X\x01: y\r\n",
    b": y\r\n",
    b"X: y\r\n folded\r\n",
    b"X: y\rz\r\n",
    b"X: y\n",
])
def test_trailer_invalid(trailer):
    decode_bad(b"0\r\n" + trailer + b"\r\n", "trailer")


def test_error_is_sticky_value_error():
    dec = http.ChunkedDecoder()
    with pytest.raises(ValueError) as info:
        dec.feed(b"zz\r\n")
    assert isinstance(info.value, http.ParseError)
    assert str(info.value)
    assert dec.done is False
    # The decoder stays broken.
    with pytest.raises(http.ParseError) as again:
        dec.feed(b"0\r\n\r\n")
    assert again.value.code == info.value.code == "chunk_size"
