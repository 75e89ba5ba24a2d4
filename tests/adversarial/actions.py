"""What a Backend does with one request (see the package docstring).

An action's run(ctx) writes to ctx (send, sleep, event) and returns what
becomes of the connection: KEEP (read the next request), CLOSE (FIN) or RST
(close with SO_LINGER 0).  Actions hold no per-request state, so one action
object can serve any number of requests and connections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adversarial.server import Ctx, Seen

KEEP, CLOSE, RST = "keep", "close", "rst"

EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"


def evil_for(req: Seen) -> bytes:
    """A whole response naming req, for use as stray bytes: if it reaches
    a client, the client can tell whose bytes these are."""
    body = f"EVIL for {req.rid}".encode("latin-1")
    return (
        b"HTTP/1.1 200 OK\r\nX-Answer-To: EVIL-%s\r\nContent-Length: %d\r\n\r\n"
        % (req.rid.encode("latin-1"), len(body))
        + body
    )


def stray(n: int) -> bytes:
    """n stray bytes: a status line and a field, cut to n bytes (17 bytes
    are exactly "HTTP/1.1 200 OK\\r\\n")."""
    seed = b"HTTP/1.1 200 OK\r\nX-Stray: " + b"s" * max(0, n)
    return seed[:n]


def early_hints(n: int = 3, size: int = 5900) -> Interim:
    """n `103 Early Hints`, each with one Link header of about `size`
    bytes, then the default Answer."""
    links = []
    i = 0
    text = ""
    while len(text) < size:
        links.append(f"</static/asset-{i:05d}.css>; rel=preload; as=style")
        i += 1
        text = ", ".join(links)
    value = text[:size]
    if value[-1] in ", ":  # a field value does not end in whitespace
        value = value[:-1] + "z"
    return Interim(count=n, status=103, reason="Early Hints", headers=(("Link", value),))


def _no_body(status: int, method: str) -> bool:
    return status < 200 or status in (204, 304) or method == "HEAD"


class Action:
    """Base class: run(ctx) -> KEEP, CLOSE or RST."""

    def run(self, ctx: Ctx) -> str:
        raise NotImplementedError


@dataclass
class Answer(Action):
    """A well-formed response.  body None: the default body naming the
    request.  204, 304 and answers to HEAD carry no body (HEAD gets the
    Content-Length the GET would have).  close: "Connection: close", then
    close after the response."""

    status: int = 200
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    close: bool = False

    def render(self, ctx: Ctx) -> bytes:
        req = ctx.req
        body = ctx.default_body() if self.body is None else self.body
        headers = [*ctx.id_headers(), *self.headers]
        if self.status not in (204, 304) and self.status >= 200:
            headers.append(("Content-Length", str(len(body))))
        if self.close:
            headers.append(("Connection", "close"))
        head = ctx.head(self.status, self.reason, headers)
        return head if _no_body(self.status, req.method) else head + body

    def run(self, ctx: Ctx) -> str:
        ctx.send(self.render(ctx))
        return CLOSE if self.close else KEEP


@dataclass
class ExtraAfterBody(Action):
    """Content-Length: len(body), then body + extra in one write.  delay > 0:
    the head is sent first, alone, and body + extra `delay` s later (event
    "late" once written).  body None: the default body; extra None: EVIL;
    extra "evil": evil_for(the request)."""

    body: bytes | None = b"hello"
    extra: bytes | str | None = None
    delay: float = 0.0
    status: int = 200

    def run(self, ctx: Ctx) -> str:
        body = ctx.default_body() if self.body is None else self.body
        extra = ctx.extra(self.extra)
        head = ctx.head(self.status, "", [*ctx.id_headers(), ("Content-Length", str(len(body)))])
        if self.delay > 0:
            ctx.send(head)
            if not ctx.sleep(self.delay):
                return CLOSE
            ctx.send(body + extra)
        else:
            ctx.send(head + body + extra)
        ctx.event("late")
        return KEEP


@dataclass
class LateBody(Action):
    """A bodiless response (status 204 or 304; any status for a HEAD
    request, with Content-Length: len(late body)), then `late` bytes:
    `delay` s later (event "late" once written), or in the same write when
    delay is 0.  late None: b"hello" + EVIL; "evil": b"hello" +
    evil_for(the request)."""

    status: int = 204
    late: bytes | str | None = None
    delay: float = 0.05

    def run(self, ctx: Ctx) -> str:
        late = self.late if isinstance(self.late, bytes) else b"hello" + ctx.extra(self.late)
        headers = list(ctx.id_headers())
        if self.status == 304:
            headers += [("ETag", '"v1"'), ("Content-Length", "5")]
        elif self.status != 204:
            headers.append(("Content-Length", "5"))
        head = ctx.head(self.status, "", headers)
        if self.delay > 0:
            ctx.send(head)
            if not ctx.sleep(self.delay):
                return CLOSE
            ctx.send(late)
        else:
            ctx.send(head + late)
        ctx.event("late")
        return KEEP


@dataclass
class Interim(Action):
    """`count` interim (1xx) heads in one write, then `then`."""

    count: int = 1
    status: int = 102
    reason: str = "Processing"
    headers: tuple[tuple[str, str], ...] = ()
    then: Action = field(default_factory=Answer)

    def run(self, ctx: Ctx) -> str:
        one = ctx.head(self.status, self.reason, [*ctx.id_headers(), *self.headers])
        ctx.send(one * self.count)
        return self.then.run(ctx)


@dataclass
class CloseAfterRequest(Action):
    """Close (FIN, or RST when rst) before any response byte."""

    rst: bool = False

    def run(self, ctx: Ctx) -> str:
        ctx.event("closed")
        return RST if self.rst else CLOSE


@dataclass
class ResetDuringHead(Action):
    """The first nbytes of a response head, then close (RST by default)."""

    nbytes: int = 20
    rst: bool = True

    def run(self, ctx: Ctx) -> str:
        head = ctx.head(200, "", [*ctx.id_headers(), ("Content-Length", "100")])
        ctx.send(head[: max(1, min(self.nbytes, len(head) - 1))])
        return RST if self.rst else CLOSE


@dataclass
class ResetMidBody(Action):
    """A head with Content-Length: total, nbytes of the body, then close
    (RST by default).  The body bytes repeat the request's id."""

    nbytes: int = 10
    total: int = 1000
    rst: bool = True

    def run(self, ctx: Ctx) -> str:
        head = ctx.head(200, "", [*ctx.id_headers(), ("Content-Length", str(self.total))])
        unit = f"[{ctx.req.rid}]".encode("latin-1")
        body = (unit * (self.total // len(unit) + 1))[: min(self.nbytes, self.total - 1)]
        ctx.send(head + body)
        return RST if self.rst else CLOSE


@dataclass
class Trickle(Action):
    """The `then` response (an Answer) one byte every `interval` s."""

    interval: float = 0.005
    then: Answer = field(default_factory=Answer)

    def run(self, ctx: Ctx) -> str:
        for i in range(len(data := self.then.render(ctx))):
            ctx.send(data[i : i + 1])
            if not ctx.sleep(self.interval):
                return CLOSE
        return CLOSE if self.then.close else KEEP


@dataclass
class LongPoll(Action):
    """Wait `delay` s, then `then`."""

    delay: float = 1.0
    then: Action = field(default_factory=Answer)

    def run(self, ctx: Ctx) -> str:
        if not ctx.sleep(self.delay):
            return CLOSE
        return self.then.run(ctx)
