"""The admin API: HTTP and JSON on `[admin] bind` (127.0.0.1:9901).

aiohttp serves it on an event loop of its own, in a background thread
(AdminServer), so that it keeps answering (/ready says 503) while the main
thread drains the engine.  The handlers hold no state: they parse, check
the token, and call the Controller, whose blocking calls (Engine.update
waits for the workers) run in the loop's thread pool.

Reads are open to clients on loopback; from elsewhere they need the token
too, except /ready and /healthz (for load balancers' probes).  Changes
always need `Authorization: Bearer <token>`; with no token set they are
refused with 403.  docs/ADMIN.md describes every endpoint.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from fastlb.addresses import lookup_key
from fastlb.admin_body import BodyError, parse_object, typed
from fastlb.config import ConfigError
from fastlb.control import (
    Conflict,
    ControlError,
    Controller,
    Invalid,
    LoopThread,
    NotFound,
    StateError,
)
from fastlb.metrics import CONTENT_TYPE, Metrics
from fastlb.redact import redacted_config, redacted_query

__all__ = ["TOKEN_ENV", "AdminServer", "build_app", "resolve_token"]

log = logging.getLogger("fastlb.admin")

TOKEN_ENV = "FASTLB_ADMIN_TOKEN"
MAX_BODY = 64 * 1024
OPEN_PATHS = frozenset({"/ready", "/healthz"})
NO_TOKEN = (
    "changes are disabled: no admin token is set; set token in the [admin] table of the "
    f"config (then reload) or the {TOKEN_ENV} environment variable (then restart)"
)
NO_TOKEN_READS = "reads from other hosts need the admin token, and none is set"
_STATUS: Mapping[type[ControlError], int] = {NotFound: 404, Conflict: 409, Invalid: 400}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answer: status and message (and optional details)."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []
        self.headers = dict(headers or {})


def resolve_token(controller: Controller, environ: Mapping[str, str] | None = None) -> str | None:
    """The admin token: FASTLB_ADMIN_TOKEN if set, else the config's."""
    env = (os.environ if environ is None else environ).get(TOKEN_ENV)
    if env:
        return env
    token = controller.base.admin.token
    return token.get_secret_value() if token is not None else None


def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is on loopback (IPv4-mapped IPv6 included)."""
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        data, status=status, headers=headers, dumps=lambda d: json.dumps(d, indent=2) + "\n"
    )


def _error(exc: ApiError) -> web.Response:
    body: dict[str, Any] = {"error": str(exc)}
    if exc.errors:
        body["errors"] = exc.errors
    return _json(body, exc.status, exc.headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON {"error": ...} with its status."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc)
    except BodyError as exc:
        return _error(ApiError(400, str(exc)))
    except ControlError as exc:
        return _error(ApiError(_STATUS.get(type(exc), 400), str(exc), exc.errors))
    except StateError as exc:
        return _error(ApiError(500, f"not persisted, so nothing changed: {exc}"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {
            404: f"no such endpoint: {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the body is too large (the limit is {MAX_BODY // 1024} KiB)",
        }.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return _error(ApiError(exc.status, message, headers=headers))
    except Exception:  # a bug: still a JSON answer, and the traceback in the log
        log.exception("admin %s %s failed", request.method, request.path)
        return _error(ApiError(500, "internal error: see fastlb's log"))


@web.middleware
async def _audit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log every change request with who sent it (the client address) and
    how it ended; refusals (401, 403) at warning level."""
    response = await handler(request)
    if request.method not in ("GET", "HEAD"):
        status = response.status
        level = logging.WARNING if status in (401, 403) else logging.INFO
        path = redacted_query(request.path_qs)
        log.log(
            level,
            "admin %s %s from %s: %d",
            request.method,
            path,
            request.remote or "?",
            status,
            extra={
                "event": "admin_change",
                "client": request.remote or "",
                "method": request.method,
                "path": path,
                "status": status,
            },
        )
    return response


class Api:
    """The handlers, over one Controller."""

    def __init__(
        self,
        controller: Controller,
        metrics: Metrics,
        token: Callable[[], str | None],
    ) -> None:
        self.ctl = controller
        self.metrics = metrics
        self.token = token
        self._removals: dict[tuple[str, str], asyncio.Task[None]] = {}

    # ---- auth -------------------------------------------------------------------

    def authorize(self, request: web.Request, change: bool) -> None:
        """Raise ApiError unless the request may go on."""
        if not change and (request.path in OPEN_PATHS or is_loopback(request.remote)):
            return
        token = self.token()
        if token is None:
            raise ApiError(403, NO_TOKEN if change else NO_TOKEN_READS)
        challenge = {"WWW-Authenticate": 'Bearer realm="fastlb"'}
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "missing 'Authorization: Bearer <token>' header", None, challenge)
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "wrong admin token", None, challenge)

    # ---- reads --------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        if self.ctl.ready:
            return _json({"ready": True})
        reason = "draining" if self.ctl.stopping else "starting"
        return _json({"ready": False, "reason": reason}, 503)

    async def stats(self, request: web.Request) -> web.Response:
        return _json(await asyncio.to_thread(self.ctl.stats))

    async def metrics_text(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def config(self, request: web.Request) -> web.Response:
        view = request.query.get("view", "effective")
        if view not in ("effective", "file"):
            raise ApiError(400, f"view {view!r} is not one of: effective, file")
        config = self.ctl.effective() if view == "effective" else self.ctl.base
        return _json(redacted_config(config.model_dump(mode="json", by_alias=True)))

    async def backends(self, request: web.Request) -> web.Response:
        stats = await asyncio.to_thread(self.ctl.stats)
        names = list(self.ctl.effective().backends)
        return _json({"backends": {name: self._backend(name, stats) for name in names}})

    async def backend(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        stats = await asyncio.to_thread(self.ctl.stats)
        return _json({"name": name, **self._backend(name, stats)})

    def _backend(self, name: str, stats: dict[str, Any]) -> dict[str, Any]:
        servers = self.ctl.servers(name, stats)
        backend = self.ctl.effective().backends.get(name)
        return {"balance": backend.balance if backend else None, "servers": servers}

    async def server(self, request: web.Request) -> web.Response:
        name, address = request.match_info["name"], _path_address(request)
        return _json(await asyncio.to_thread(self.ctl.server, name, address))

    # ---- changes ------------------------------------------------------------------

    async def add_server(self, request: web.Request) -> web.Response:
        self.authorize(request, change=True)
        name = request.match_info["name"]
        body = await _body(request, {"address", "weight", "max_conn", "state"}, {"address"})
        address = typed(body, "address", str)
        kwargs = {
            "weight": typed(body, "weight", int, 1),
            "max_conn": typed(body, "max_conn", int, 0),
            "state": typed(body, "state", str, "ready"),
        }
        added = await asyncio.to_thread(lambda: self.ctl.add_server(name, address, **kwargs))
        entry = await asyncio.to_thread(self.ctl.server, name, added.address)
        return _json(entry, 201, {"Location": f"/backends/{name}/servers/{added.address}"})

    async def patch_server(self, request: web.Request) -> web.Response:
        self.authorize(request, change=True)
        name, address = request.match_info["name"], _path_address(request)
        body = await _body(request, {"weight", "state"})
        weight, state = typed(body, "weight", int, None), typed(body, "state", str, None)
        await asyncio.to_thread(
            lambda: self.ctl.patch_server(name, address, weight=weight, state=state)
        )
        return _json(await asyncio.to_thread(self.ctl.server, name, address))

    async def remove_server(self, request: web.Request) -> web.Response:
        self.authorize(request, change=True)
        name, address = request.match_info["name"], _path_address(request)
        wait = request.query.get("wait", "").lower() in ("1", "true", "yes")
        key = (name, address)
        if await asyncio.to_thread(self.ctl.begin_remove, name, address):
            task = asyncio.get_running_loop().create_task(self._finish(name, address))
            self._removals[key] = task
            task.add_done_callback(lambda _: self._removals.pop(key, None))
        task = self._removals.get(key)
        if wait and task is not None:
            await asyncio.shield(task)
            return _json({"address": address, "removed": True})
        timeout = self.ctl.base.global_.drain_timeout
        body = {"address": address, "state": "drain", "removing": True, "drain_timeout": timeout}
        return _json(body, 202)

    async def _finish(self, name: str, address: str) -> None:
        try:
            await self.ctl.wait_drained(name, address)
            await asyncio.to_thread(self.ctl.finish_remove, name, address)
        except Exception:  # the server stays in drain; say why
            log.exception("removing server %s/%s failed", name, address)

    async def reload(self, request: web.Request) -> web.Response:
        self.authorize(request, change=True)
        try:
            warnings = await asyncio.to_thread(self.ctl.reload)
        except ConfigError as exc:
            raise ApiError(400, "the config file is invalid: nothing changed", exc.errors) from None
        except (OSError, ValueError) as exc:
            raise ApiError(500, f"the engine refused the config, nothing changed: {exc}") from None
        generation = (await asyncio.to_thread(self.ctl.stats)).get("generation")
        return _json({"reloaded": True, "generation": generation, "warnings": warnings})

    async def shutdown(self) -> None:
        """Cancel the removals still waiting for their servers to drain."""
        tasks = list(self._removals.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _path_address(request: web.Request) -> str:
    """The {address} of the path, canonical when it is an address, so that
    any spelling of a server's address names it."""
    return lookup_key(request.match_info["address"])


async def _body(
    request: web.Request, allowed: set[str], required: set[str] | None = None
) -> dict[str, Any]:
    """The request's JSON object (fastlb/admin_body.py); more than MAX_BODY
    bytes is a 413 (aiohttp's, answered by _errors)."""
    return parse_object(await request.read(), allowed, required or ())


def build_app(
    controller: Controller,
    *,
    metrics: Metrics | None = None,
    token: Callable[[], str | None] | None = None,
) -> tuple[web.Application, Api]:
    """The aiohttp application of the admin API (and its handlers)."""
    api = Api(
        controller, metrics or Metrics(controller), token or (lambda: resolve_token(controller))
    )

    @web.middleware
    async def _reads(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in ("GET", "HEAD"):
            api.authorize(request, change=False)
        return await handler(request)

    async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = "fastlb"  # not aiohttp's name and version

    app = web.Application(middlewares=[_audit, _errors, _reads], client_max_size=MAX_BODY)
    app.on_response_prepare.append(_server_header)
    servers = "/backends/{name}/servers"
    app.add_routes(
        [
            web.get("/healthz", api.healthz),
            web.get("/ready", api.ready),
            web.get("/stats", api.stats),
            web.get("/metrics", api.metrics_text),
            web.get("/config", api.config),
            web.get("/backends", api.backends),
            web.get("/backends/{name}", api.backend),
            web.post(servers, api.add_server),
            web.get(servers + "/{address}", api.server),
            web.patch(servers + "/{address}", api.patch_server),
            web.delete(servers + "/{address}", api.remove_server),
            web.post("/reload", api.reload),
        ]
    )
    return app, api


class AdminServer:
    """The admin API served on a LoopThread (its own unless given one)."""

    def __init__(
        self,
        controller: Controller,
        *,
        host: str | None = None,
        port: int | None = None,
        token: Callable[[], str | None] | None = None,
    ) -> None:
        admin = controller.base.admin
        self._host = admin.host if host is None else host
        self._port = admin.port if port is None else port
        self._app, self._api = build_app(controller, token=token)
        self._runner: web.AppRunner | None = None
        self._loop: LoopThread | None = None
        self._own_loop = False
        self.address: tuple[str, int] = (self._host, self._port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self, loop: LoopThread | None = None, timeout: float = 10.0) -> tuple[str, int]:
        """Bind and serve on loop; returns (host, port) as bound.  Raises
        OSError when the address cannot be bound."""
        self._own_loop = loop is None
        if loop is None:
            loop = LoopThread("fastlb-admin")
            loop.start()
        self._loop = loop
        try:
            self.address = loop.call(self._start(), timeout)
        except BaseException:
            self.stop()
            raise
        return self.address

    async def _start(self) -> tuple[str, int]:
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, self._host, self._port, backlog=64).start()
        host, port = runner.addresses[0][:2]
        return str(host), int(port)

    async def _stop(self) -> None:
        await self._api.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (and the loop, if it is the server's own)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            loop.call(self._stop(), timeout)
        finally:
            if self._own_loop:
                loop.stop(timeout)
