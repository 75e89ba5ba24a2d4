"""End-to-end differential fuzzing of the HTTP/1.1 proxy.

Several client threads send random requests, valid or mutated (bad chunk
sizes, Content-Length with Transfer-Encoding, obs-fold, bare LF, duplicate
Content-Length, Transfer-Encoding variants, ...), alone or pipelined,
through fastlb (mode "http", 2 workers) to one strict adversarial backend
(tests/adversarial) that misbehaves on the paths that ask it to: extra
bytes or a whole response after a body, a body after 204/304, 1xx, close or
reset before or during the answer, trickles, long polls.

Every request carries a unique id (q<client>n<number>z) in its target and
in X-Req-Id; every backend answer names the id it answers, and the bytes a
misbehaving backend sends past a response name it too.  The differential
part: fastlb.http, the Python binding of fastlb's own C parser, says for
each raw request whether fastlb must refuse it.

Asserted:
  - every response a client reads answers the request it sent, in order:
    the backend's answer for that id (status, X-Answer-To, exact body, so
    the request body arrived intact), or, where the request or the
    backend's action allows a failure, fastlb's own 4xx/5xx, or the close
    of the connection;
  - no byte naming another request (or any stray byte) reaches a client;
  - a request the parser refuses gets a fastlb error (or a close), and the
    backend never receives its head (or, for a bad chunked body, never a
    complete request);
  - the strict backend never had to refuse what fastlb forwarded, except on
    a connection that carried a bad chunked body;
  - POST and PATCH reach the backend at most once;
  - the engine still answers at the end.

Misbehaviours that cannot be told apart from a legitimate next response
(a body after a 204 that arrives *later*, after the connection went back
to the pool and was reused) are left out: no proxy can tell those bytes
from the next answer.  Bodies after bodiless responses are sent in the
same write as the head.

FASTLB_FUZZ_SECONDS (default 30) sets how long the clients run,
FASTLB_FUZZ_SEED replays a run (the seed is printed and named in the
failure message)."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from adversarial import (
    Action,
    Answer,
    Backend,
    CloseAfterRequest,
    ExtraAfterBody,
    Interim,
    LateBody,
    LongPoll,
    ResetDuringHead,
    ResetMidBody,
    Trickle,
    early_hints,
    stray,
)
from l7_backends import Bad, Client, encode_chunked
from test_engine_l7 import cfg

import fastlb.http
from fastlb.config import parse_config
from fastlb.engine import Engine

SECONDS = float(os.environ.get("FASTLB_FUZZ_SECONDS", "30"))
CLIENTS = 4
MAX_VIOLATIONS = 20
ID_RE = re.compile(rb"q\d+n\d+z")
ALPHA = b"abcdefghijklm0123456789-_.~ "

# action name -> (action, the status its answer has, or None: it may fail)
ACTIONS: dict[str, tuple[Action, int | None]] = {
    "ok": (Answer(), 200),
    "closeafter": (Answer(close=True), 200),
    "extra": (ExtraAfterBody(body=None, extra="evil"), 200),
    "extralate": (ExtraAfterBody(body=None, extra="evil", delay=0.003), 200),
    "stray": (ExtraAfterBody(body=None, extra=stray(17), delay=0.003), 200),
    "late204": (LateBody(status=204, late="evil", delay=0), 204),
    "late304": (LateBody(status=304, late="evil", delay=0), 304),
    "hints": (early_hints(2, 2000), 200),
    "interim": (Interim(count=5), 200),
    "trickle": (Trickle(interval=0.001), 200),
    "poll": (LongPoll(delay=0.2), 200),
    "flood": (Interim(count=40), None),
    "fin": (CloseAfterRequest(rst=False), None),
    "rst": (CloseAfterRequest(rst=True), None),
    "rsthead": (ResetDuringHead(nbytes=15), None),
    "rstbody": (ResetMidBody(nbytes=40, total=400), None),
}
ACTION_WEIGHTS = {"ok": 30, "poll": 2, "trickle": 2, "flood": 2}
METHODS = ["GET"] * 6 + ["HEAD", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MUTATIONS = [
    "cl_te",
    "dup_cl",
    "dup_cl_same",
    "obs_fold",
    "bare_lf",
    "bad_chunk",
    "chunk_no_crlf",
    "te_variant",
    "space_colon",
    "nul",
    "two_hosts",
    "no_host",
    "bad_method",
    "cl_plus",
    "long_header",
    "bad_version",
]
TE_VARIANTS = ["chunked;x=1", "cHuNkEd", "identity, chunked", "gzip, chunked", "chunked, chunked"]


def policy(req: Any) -> Action | None:
    """The action named by the path /fz/<action>/<id>.  A HEAD response ends
    with its head, so the body and extra bytes that follow it go in the
    same write (sent later, they could not be told from the next answer)."""
    parts = req.path.split("/")
    if len(parts) > 2 and parts[2] in ACTIONS:
        act = ACTIONS[parts[2]][0]
        if req.method == "HEAD" and isinstance(act, ExtraAfterBody) and act.delay:
            return ExtraAfterBody(body=act.body, extra=act.extra, delay=0)
        return act
    return None


@dataclass
class Req:
    rid: str
    method: str
    target: str
    action: str
    body: bytes | None
    raw: bytes = b""
    mutation: str | None = None
    # "answer": must get the backend's answer; "fail-ok": may get a fastlb
    # error or a close; "reject": the parser refuses the head; "reject-body":
    # the parser refuses the chunked body.
    cls: str = "answer"
    close: bool = False

    @property
    def status(self) -> int | None:
        return ACTIONS[self.action][1]

    def expected_body(self) -> bytes:
        n = len(self.body or b"")
        return f"adv {self.method} {self.target} id={self.rid} len={n}\n".encode()


def rand_text(rng: random.Random, lo: int, hi: int) -> bytes:
    return bytes(rng.choice(ALPHA) for _ in range(rng.randint(lo, hi))).strip() or b"x"


def generate(rng: random.Random, rid: str, mutate: bool, mutation: str | None = None) -> Req:
    """A random request (raw bytes and expectations); mutated when mutate
    (with `mutation`, else a random one)."""
    for _ in range(100):  # bounded: a mutation that desyncs is drawn again
        req = _generate(rng, rid, mutate, mutation)
        if req is not None:
            return req
    raise AssertionError("no request generated")


def _generate(rng: random.Random, rid: str, mutate: bool, forced: str | None) -> Req | None:
    method = rng.choice(METHODS)
    names = list(ACTIONS)
    action = rng.choices(names, [ACTION_WEIGHTS.get(n, 1) for n in names])[0]
    target = f"/fz/{action}/{rid}"
    if rng.random() < 0.3:
        target += "?" + rand_text(rng, 1, 20).decode().replace(" ", "+")
    mutation = (forced or rng.choice(MUTATIONS)) if mutate else None
    body: bytes | None = None
    framing = "none"
    needs_body = mutation in ("cl_te", "dup_cl", "dup_cl_same", "cl_plus", "bad_chunk")
    needs_body = needs_body or mutation in ("chunk_no_crlf", "te_variant")
    if method in ("POST", "PUT", "PATCH") or needs_body:
        if needs_body and method in ("GET", "HEAD", "DELETE", "OPTIONS"):
            method = "POST"
        body = rand_text(rng, 0, rng.choice([0, 10, 100, 3000]))
        framing = rng.choice(["cl", "chunked"])
        if mutation in ("dup_cl", "dup_cl_same", "cl_plus"):
            framing = "cl"
        if mutation in ("cl_te", "bad_chunk", "chunk_no_crlf", "te_variant"):
            framing = "chunked"
            body = body or b"hello"
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: fuzz.example"]
    lines.append(f"X-Req-Id: {rid}".encode())
    for i in range(rng.randint(0, 4)):
        lines.append(b"X-Fz-%d: %s" % (i, rand_text(rng, 1, 60)))
    close = rng.random() < 0.05
    if close:
        lines.append(b"Connection: close")
    data = b""
    if framing == "cl":
        assert body is not None
        lines.append(b"Content-Length: %d" % len(body))
        data = body
    elif framing == "chunked":
        assert body is not None
        lines.append(b"Transfer-Encoding: chunked")
        sizes = tuple(rng.randint(1, 500) for _ in range(3))
        data = encode_chunked(body, sizes)
    sep = b"\r\n"
    if mutation == "cl_te":
        lines.append(b"Content-Length: %d" % len(data))
    elif mutation == "dup_cl":
        lines.append(b"Content-Length: %d" % (len(data) + 1))
    elif mutation == "dup_cl_same":
        lines.append(b"Content-Length: %d" % len(data))
    elif mutation == "obs_fold":
        lines.insert(2, b"X-Fold: a\r\n folded")
    elif mutation == "bare_lf":
        k = rng.randrange(1, len(lines))
        lines[k - 1 : k + 1] = [lines[k - 1] + b"\n" + lines[k]]
    elif mutation == "bad_chunk":
        data = b"zz\r\n" + data
    elif mutation == "chunk_no_crlf":
        data = b"3\r\nhelloX\r\n0\r\n\r\n"
    elif mutation == "te_variant":
        lines = [x for x in lines if not x.startswith(b"Transfer-Encoding")]
        lines.append(b"Transfer-Encoding: " + rng.choice(TE_VARIANTS).encode())
    elif mutation == "space_colon":
        lines.append(b"X-Sp : v")
    elif mutation == "nul":
        lines.append(b"X-Nul: a\x00b")
    elif mutation == "two_hosts":
        lines.append(b"Host: other.example")
    elif mutation == "no_host":
        lines.remove(b"Host: fuzz.example")
    elif mutation == "bad_method":
        lines[0] = lines[0].replace(method.encode(), b"G@T", 1)
    elif mutation == "cl_plus":
        lines = [x for x in lines if not x.startswith(b"Content-Length")]
        lines.append(b"Content-Length: +%d" % len(data))
    elif mutation == "long_header":
        lines.append(b"X-Long: " + b"a" * 9000)
    elif mutation == "bad_version":
        lines[0] = lines[0].replace(b"HTTP/1.1", b"HTTP/1.2")
    raw = sep.join(lines) + b"\r\n\r\n" + data
    req = Req(rid, method, target, action, body, raw, mutation, close=close)
    verdict = predict(raw)
    if verdict == "desync":
        return None
    if verdict != "valid":
        req.cls = verdict
    elif mutation is not None or req.status is None:
        req.cls = "fail-ok"
    return req


def predict(raw: bytes) -> str:
    """What fastlb's own parser makes of one whole request: "valid",
    "reject" (the head), "reject-body" (the chunked body) or "desync" (it
    parses, but frames a different number of bytes than were sent)."""
    try:
        head = fastlb.http.parse_request(raw, max_header_bytes=8192)
    except fastlb.http.ParseError:
        return "reject"
    if head is None:
        return "desync"
    rest = raw[head.header_bytes :]
    if head.chunked:
        dec = fastlb.http.ChunkedDecoder()
        try:
            _, done = dec.feed(rest)
        except fastlb.http.ParseError:
            return "reject-body"
        return "valid" if done and not dec.unused else "desync"
    return "valid" if len(rest) == (head.content_length or 0) else "desync"


@dataclass
class Run:
    seed: int
    addr: tuple[str, int]
    end: float
    violations: list[str] = field(default_factory=list)
    sent: dict[str, Req] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: dict[str, int] = field(default_factory=dict)

    def bad(self, req: Req, what: str, data: bytes = b"") -> None:
        with self.lock:
            self.violations.append(
                f"{req.rid} {req.method} {req.action} mutation={req.mutation} cls={req.cls}: "
                f"{what} {data[:300]!r}"
            )

    def count(self, key: str) -> None:
        with self.lock:
            self.outcomes[key] = self.outcomes.get(key, 0) + 1


def check_ids(run: Run, req: Req, data: bytes) -> None:
    foreign = {m.decode() for m in ID_RE.findall(data)} - {req.rid}
    if foreign or b"EVIL" in data or b"X-Stray" in data:
        run.bad(req, f"bytes of another request reached it ({sorted(foreign)})", data)


def read_one(run: Run, c: Client, req: Req, may_close: bool) -> str:
    """Read and check the response to req.  Returns "answer", "error" (a
    fastlb error response), "closed" or "close-after" (answered, and the
    connection ends)."""
    try:
        resp = c.read_response(req.method)
    except (OSError, EOFError, Bad) as exc:
        data = bytes(c.r.buf)
        check_ids(run, req, data)
        if isinstance(exc, TimeoutError):
            run.bad(req, "no response within the client timeout", data)
        elif isinstance(exc, Bad):
            run.bad(req, f"malformed response: {exc}", data)
        elif req.cls == "answer" and not may_close:
            run.bad(req, f"connection ended instead of the answer: {exc!r}", data)
        return "closed"
    data = b"".join(i.raw_head for i in resp.interim) + resp.raw_head + resp.body
    check_ids(run, req, data)
    ends = "close" in (resp.header("Connection") or "").lower()
    if resp.header("X-Answer-To") is not None:
        want_body = b"" if req.method == "HEAD" or resp.status != 200 else req.expected_body()
        ok = resp.header("X-Answer-To") == req.rid and resp.status == (req.status or 200)
        ok = ok and resp.body == want_body and req.cls in ("answer", "fail-ok")
        if not ok:
            run.bad(req, f"wrong answer {resp.status} {resp.header('X-Answer-To')}", data)
        return "close-after" if ends else "answer"
    # fastlb's own response.
    if not 400 <= resp.status < 600:
        run.bad(req, f"status {resp.status} without X-Answer-To", data)
    elif req.cls == "answer":
        run.bad(req, f"fastlb error {resp.status} for a request that must be answered", data)
    return "close-after" if ends else "error"


def client(run: Run, k: int) -> None:
    rng = random.Random(f"{run.seed}-{k}")
    n = 0
    c: Client | None = None
    try:
        while time.monotonic() < run.end and len(run.violations) < MAX_VIOLATIONS:
            if c is None:
                c = Client(run.addr, timeout=15)
            batch: list[Req] = []
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                n += 1
                req = generate(rng, f"q{k}n{n}z", mutate=False)
                batch.append(req)
                if req.close:
                    break
            if not batch[-1].close and rng.random() < 0.25:
                n += 1
                batch.append(generate(rng, f"q{k}n{n}z", mutate=True))
            with run.lock:
                for req in batch:
                    run.sent[req.rid] = req
            pipelined = rng.random() < 0.5
            if pipelined:
                c.send(b"".join(r.raw for r in batch))
            may_close = False
            done = False
            for req in batch:
                if done:
                    run.count("unanswered")
                    continue
                if not pipelined:
                    try:
                        c.send(req.raw)
                    except OSError:
                        if req.cls == "answer" and not may_close:
                            run.bad(req, "could not send on a live connection")
                        done = True
                        continue
                got = read_one(run, c, req, may_close)
                run.count(f"{req.cls}:{got}")
                # The connection ends after a close, a refused request, or
                # "Connection: close"; a failed request may end it too.
                done = got in ("closed", "close-after") or req.cls != "answer" or req.close
                may_close = may_close or got != "answer"
            if done:
                c.close()
                c = None
    except Exception as exc:  # a bug in the test itself must not pass silently
        with run.lock:
            run.violations.append(f"client {k} crashed: {exc!r}")
        raise
    finally:
        if c is not None:
            c.close()


def check_backend(run: Run, b: Backend) -> None:
    raw = b.raw()
    seen: dict[str, list[Any]] = {}
    for q in b.requests:
        seen.setdefault(q.rid, []).append(q)
    for rid, req in run.sent.items():
        got = seen.get(rid, [])
        if req.cls == "reject" and rid.encode() in raw:
            run.bad(req, "the backend received (part of) a request the parser refuses")
        if req.cls == "reject-body" and got:
            run.bad(req, "the backend received whole a request whose body the parser refuses")
        if req.method in ("POST", "PATCH") and len(got) > 1:
            run.bad(req, f"{req.method} reached the backend {len(got)} times")
        for q in got:
            if (q.method, q.target, q.body) != (req.method, req.target, req.body or b""):
                run.bad(req, f"reached the backend altered: {q.method} {q.target}", q.raw)
    body_bad = [r.rid.encode() for r in run.sent.values() if r.cls == "reject-body"]
    for e in b.bad:
        if not any(rid in e.received for rid in body_bad):
            with run.lock:
                run.violations.append(f"backend refused what fastlb forwarded: {e.reason}")


def test_l7_differential_fuzz() -> None:
    seed = int(os.environ.get("FASTLB_FUZZ_SEED", str(random.randrange(1 << 32))))
    print(f"fuzz seed {seed} (replay: FASTLB_FUZZ_SEED={seed}), {SECONDS} s")
    b = Backend("adv", policy=policy)
    engine = Engine(
        parse_config(
            cfg(
                [b.address],
                workers=2,
                listener={"response_timeout": "10s", "max_header_size": "8KiB"},
            )
        )
    )
    engine.start()
    try:
        run = Run(seed, engine.addresses()["web"], time.monotonic() + SECONDS)
        threads = [threading.Thread(target=client, args=(run, k)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 120)
        assert not any(t.is_alive() for t in threads), f"a client hangs (seed {seed})"
        check_backend(run, b)
        # The engine is alive and answers.
        with Client(run.addr) as c:
            final = c.request("GET", "/fz/ok/final", headers=[("X-Req-Id", "final")])
        assert final.status == 200 and final.header("X-Answer-To") == "final"
        assert engine.running
        summary = dict(sorted(run.outcomes.items()))
        assert not run.violations, (
            f"seed {seed} (replay: FASTLB_FUZZ_SEED={seed}): {len(run.violations)} violations "
            f"in {len(run.sent)} requests, outcomes {summary}:\n" + "\n".join(run.violations[:20])
        )
        assert len(run.sent) > 50, (seed, summary)
        print(f"{len(run.sent)} requests, outcomes {summary}")
    finally:
        engine.stop()
        b.stop()


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_fuzz_generator_mutations_are_classified(mutation: str) -> None:
    """Each mutation yields requests; the ones meant to break the head or the
    body are refused by the parser (so the fuzzer's strongest checks apply)."""
    rng = random.Random(mutation)
    verdicts = set()
    for i in range(20):
        req = generate(rng, f"q0n{i}z", mutate=True, mutation=mutation)
        assert req.mutation == mutation
        verdicts.add(req.cls)
    if mutation in ("dup_cl_same", "te_variant"):
        assert "fail-ok" in verdicts, verdicts
    elif mutation in ("bad_chunk", "chunk_no_crlf"):
        assert verdicts == {"reject-body"}, verdicts
    else:
        assert verdicts == {"reject"}, verdicts
