"""JSON over HTTP for model servers, bounded: one overall deadline per attempt (a server that
trickles bytes cannot hold a request past it), a cap on the reply body, bounded retries with
back-off on transient failures only (connection errors, timeouts, 408/409/429, 5xx).

The standard library's ``http.client`` is used directly because these two bounds are what the
higher-level clients here cannot enforce.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

RETRY_STATUS = {408, 409, 429} | set(range(500, 600))
STATUS_NAMES = {400: "BadRequest", 401: "Authentication", 403: "PermissionDenied", 404: "NotFound",
                408: "RequestTimeout", 409: "Conflict", 413: "PayloadTooLarge", 422: "UnprocessableEntity",
                429: "RateLimit"}


class HTTPFailure(Exception):
    """One failed attempt; ``transient`` says whether retrying may help."""

    def __init__(self, kind: str, detail: str, transient: bool):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.transient = kind, transient


@dataclass(frozen=True)
class Limits:
    timeout: float = 120.0  # seconds for a whole attempt: connect, send, wait, read
    retries: int = 3  # further attempts after a transient failure
    max_bytes: int = 32 << 20  # reply bodies above this are refused
    backoff: float = 0.5  # first back-off, seconds (doubles each retry, with jitter, capped at 8 s)


def post_json(url: str, payload: dict, headers: dict[str, str], limits: Limits) -> dict:
    """POST ``payload`` to ``url`` and return the JSON object replied. Raises HTTPFailure after
    the retries (its message says the kind of failure: Timeout, RateLimit, InternalServer ...)."""
    body = json.dumps(payload).encode()
    for attempt in range(limits.retries + 1):
        try:
            return _attempt(url, body, headers, limits)
        except HTTPFailure as e:
            if not e.transient or attempt == limits.retries:
                raise
            time.sleep(min(8.0, limits.backoff * 2 ** attempt) * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


def _attempt(url: str, body: bytes, headers: dict[str, str], limits: Limits) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPFailure("BadURL", f"{url!r} is not an http(s) URL", transient=False)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    kwargs = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
    conn = cls(parts.hostname, parts.port, timeout=limits.timeout, **kwargs)
    expired = threading.Event()
    held: list[socket.socket] = []  # the connection drops its socket once a reply will close it

    def expire() -> None:  # the deadline: unblock whatever read or write is in progress
        expired.set()
        for sock in held:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(limits.timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.connect()
        held.append(conn.sock)
        conn.request("POST", path, body, {"Content-Type": "application/json", "Accept": "application/json",
                                          **headers})
        resp = conn.getresponse()
        declared = resp.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise HTTPFailure("TooLarge", f"reply of {int(declared)} bytes (limit {limits.max_bytes})", False)
        chunks, size = [], 0
        while chunk := resp.read1(1 << 16):
            size += len(chunk)
            if size > limits.max_bytes:
                raise HTTPFailure("TooLarge", f"reply over {limits.max_bytes} bytes", transient=False)
            chunks.append(chunk)
        data = b"".join(chunks)
    except HTTPFailure:
        raise
    except (OSError, http.client.HTTPException) as e:
        if expired.is_set() or isinstance(e, (socket.timeout, TimeoutError)):
            raise HTTPFailure("Timeout", f"no complete reply within {limits.timeout:g} s", True) from e
        raise HTTPFailure("Connection", f"{type(e).__name__}: {e}", transient=True) from e
    finally:
        timer.cancel()
        conn.close()
    if expired.is_set():
        raise HTTPFailure("Timeout", f"no complete reply within {limits.timeout:g} s", True)
    if resp.status != 200:
        name = STATUS_NAMES.get(resp.status, "InternalServer" if resp.status >= 500 else "HTTPError")
        raise HTTPFailure(name, f"HTTP {resp.status}: {_snippet(data)}", resp.status in RETRY_STATUS)
    try:
        out = json.loads(data)
    except (ValueError, RecursionError):
        raise HTTPFailure("BadReply", f"not JSON: {_snippet(data)}", transient=False) from None
    if not isinstance(out, dict):
        raise HTTPFailure("BadReply", f"expected a JSON object, got {type(out).__name__}", transient=False)
    return out


def _snippet(data: bytes) -> str:
    text = data[:200].decode("utf-8", "replace").replace("\n", " ")
    return repr(text) + ("..." if len(data) > 200 else "")
