"""Misbehaving HTTP/1.1 backends for fastlb's tests, in one place.

A Backend is a small threaded server on 127.0.0.1 (one thread per
connection, real sockets) that parses requests strictly, records every
request it receives, and answers each one with an Action chosen per path or
per connection.  Most actions misbehave on purpose: the bugs they provoke in
a proxy (a response given to the wrong client, a POST sent twice, a stream
cut short) are the ones a proxy's own tests rarely reach.

    from adversarial import Backend, ExtraAfterBody, CloseAfterRequest, EVIL

    b = Backend("a", paths={"/1": ExtraAfterBody(b"hello", extra=EVIL, delay=0.05)},
                policy=lambda req: CloseAfterRequest() if req.seq == 1 else None)
    ...                      # point a proxy at b.address, send requests
    b.requests               # [Seen(method, target, headers, body, conn, seq, ...)]
    b.stop()

Choosing the action for a request: `policy(req)` first (any callable of the
recorded request, so per connection: `req.conn` is the connection number
from 1 in accept order, `req.seq` the request's index on its connection);
when it returns None, `paths[path]` (exact path, query ignored); else
`default` (Answer() unless given).

What a request is answered with (actions.py):

    Answer(status, headers, body, close)   a well-formed response; the body
        names the request (see below); 204/304/1xx and HEAD get none
    ExtraAfterBody(body, extra, delay)     Content-Length: len(body), then
        body + extra in ONE write (after `delay` s when > 0: the head goes
        first, alone); extra defaults to EVIL, a whole second response
    stray(n)                               n stray bytes for `extra`
    LateBody(status, late, delay)          a response that has no body (204,
        304, or the answer to HEAD), then `late` bytes, after `delay` s (0:
        in the same write as the head)
    Interim(count, status, headers, then)  `count` 1xx heads (102 Processing
        by default; 103 with big Link headers is `early_hints(n, size)`),
        in one write, then the `then` action
    CloseAfterRequest(rst)                 read the request, then close with
        FIN (or RST when rst) before any response byte
    ResetDuringHead(nbytes, rst)           the first nbytes of a response
        head, then close (RST by default)
    ResetMidBody(nbytes, total, rst)       a head with Content-Length total,
        nbytes of body, then close (RST by default)
    Trickle(interval, then)                the `then` response one byte every
        `interval` s
    LongPoll(delay, then)                  wait `delay` s, then `then`

Every wait is cut short by stop().  Actions that write late (ExtraAfterBody
and LateBody with a delay) record an event when the late bytes have been
written: `wait_event("late", conn=...)` lets a test wait on the condition
instead of sleeping.

How responses name their request: each response the backend makes for a
request carries `X-Backend-Name`, `X-Answer-To` (the request's X-Req-Id
header, else its target), `X-Conn` and `X-Seq`; the default body is
"<backend> <METHOD> <target> id=<id> len=<request body length>\\n".  The
extra bytes of ExtraAfterBody / LateBody default to EVIL, a whole response
whose body is "EVIL"; `evil_for(req)` makes one naming the request, so a
test can tell whose bytes went astray.

Recording: `requests` (Seen: method, target, version, headers, body,
trailers, chunked, conn, seq, raw bytes of the request), `bad` (BadRequest:
conn, reason, the bytes received on that connection), `raw(conn)` (every
byte received on a connection), `accepted`, `events`.

Strictness (strict=True, the default): the request line is exactly
"METHOD SP target SP HTTP/1.x"; no bare CR or LF; field names are tokens
with no space before the colon; no obs-fold; at most one Content-Length
value (digits only); Transfer-Encoding, if present, is ONE field line whose
value is exactly "chunked" (no other coding, no parameters, no other
letter case), never with Content-Length; chunked bodies are framed exactly
(CRLF after data, hex sizes).  Anything else is recorded in `bad` and the
connection is closed without an answer.  strict=False accepts
Transfer-Encoding whose last coding is chunked in any case.

The test_adversarial_harness_* tests check this package without fastlb.
Only 127.0.0.1 is used."""

from adversarial.actions import (
    EVIL,
    Action,
    Answer,
    CloseAfterRequest,
    ExtraAfterBody,
    Interim,
    LateBody,
    LongPoll,
    ResetDuringHead,
    ResetMidBody,
    Trickle,
    early_hints,
    evil_for,
    stray,
)
from adversarial.server import Backend, BadRequest, Seen

__all__ = [
    "EVIL",
    "Action",
    "Answer",
    "Backend",
    "BadRequest",
    "CloseAfterRequest",
    "ExtraAfterBody",
    "Interim",
    "LateBody",
    "LongPoll",
    "ResetDuringHead",
    "ResetMidBody",
    "Seen",
    "Trickle",
    "early_hints",
    "evil_for",
    "stray",
]
