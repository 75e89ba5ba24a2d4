"""A small asyncio HTTP/1.1 static server: the benchmark's stand-in backend
when NGINX is not installed (fastlb has no static backend of its own).

    python bench/tool/static_server.py --root DIR --port 8001 --port 8002

Serves DIR/small and DIR/1m (any file in DIR by name) with Content-Length,
keep-alive unless the request says `Connection: close`, 404 for anything
else.  /slow?after=S is the slow route of the slow-clients scenario: it
answers (DIR/small's body, then closes) only after S seconds, or never if
the client goes first; any request body is read and dropped.  With NGINX as
the backend one copy of this server serves /slow alone, behind NGINX.

It is not NGINX (no sendfile, one process per worker, its own framing),
so figures taken with it do not compare with runs in front of NGINX: the
report says when it stood in.  It runs by path, without
importing bench, so that it starts fast and alone."""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
SLOW_PATH = b"/slow"
SLOW_DEFAULT_S = 15.0
SLOW_MAX_S = 3600.0


def slow_after(target: bytes) -> float | None:
    """For /slow?after=S the seconds S (15 without a query), else None."""
    path, _, query = target.partition(b"?")
    if path != SLOW_PATH:
        return None
    for pair in query.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == b"after":
            try:
                return min(SLOW_MAX_S, max(0.0, float(value)))
            except ValueError:
                break
    return SLOW_DEFAULT_S


def slow_response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


async def answer_slowly(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, after: float, response: bytes
) -> None:
    """Answer after `after` seconds unless the client closes first; read
    (and drop) whatever it sends meanwhile."""

    async def until_eof() -> None:
        while await reader.read(65536):
            pass

    eof = asyncio.ensure_future(until_eof())
    done, _ = await asyncio.wait({eof}, timeout=after)
    if eof in done:
        return
    eof.cancel()
    writer.write(response)
    await writer.drain()


def load(root: Path) -> dict[bytes, bytes]:
    """Every regular file of root as a full response, keyed by its path."""
    responses = {}
    for path in root.iterdir():
        if path.is_file():
            body = path.read_bytes()
            head = (
                "HTTP/1.1 200 OK\r\nServer: bench-static\r\n"
                "Content-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            responses[b"/" + path.name.encode()] = head.encode() + body
    return responses


def make_handler(
    responses: dict[bytes, bytes],
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    slow = slow_response(responses.get(b"/small", b"").partition(b"\r\n\r\n")[2])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, _, rest = head.partition(b"\r\n")
                parts = line.split()
                target = parts[1] if len(parts) == 3 else b""
                after = slow_after(target)
                if after is not None:
                    await answer_slowly(reader, writer, after, slow)
                    break
                writer.write(responses.get(target, NOT_FOUND))
                await writer.drain()
                if b"connection: close" in rest.lower():
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def serve(root: Path, ports: list[int]) -> None:
    handler = make_handler(load(root))
    servers = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # one copy per worker
        sock.bind(("127.0.0.1", port))
        servers.append(await asyncio.start_server(handler, sock=sock, backlog=4096))
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, action="append", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.root, args.port))


if __name__ == "__main__":
    main()
