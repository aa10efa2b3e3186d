"""A small, scriptable, *misbehaving* HTTP server on loopback for client robustness tests.

Real sockets, a port the OS allocates, one thread per connection. A test gives it a function
`(HostileRequest) -> Reply`; the reply's body is an iterable of chunks, so it can be endless or
trickle (a `Pause` between chunks). Everything ends when the server is closed: open replies stop
at their next chunk, threads are joined.
"""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pause:
    """In a body: wait this long (or until the server closes) before the next chunk."""

    seconds: float


@dataclass
class HostileRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def endpoint(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Iterable[bytes | Pause] = ()
    # None: send Content-Length when the body is a list/tuple, else close-delimited.
    content_length: int | None = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(b'sig')}"


def envelope(data: dict[str, Any], code: int = 200, subcode: int = 0, msg: str = "OK") -> Reply:
    body = json.dumps(
        {
            "meta": {"result_code": code, "result_subcode": subcode, "result_msg": msg},
            "data": data,
        }
    ).encode()
    return Reply(code, {"Content-Type": "application/json"}, [body])


Handler = Callable[[HostileRequest], Reply]


class HostileServer:
    """`with HostileServer(handler) as srv:` → `srv.url` is `http://127.0.0.1:<port>`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HostileRequest] = []
        self.closed = threading.Event()
        self.bytes_sent = 0
        self._lock = threading.Lock()
        outer = self

        class _Conn(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        class _Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            block_on_close = True

        self._server = _Server(("127.0.0.1", 0), _Conn)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def count(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.endpoint == endpoint)

    # -- one connection (keep-alive: several requests) ------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(5.0)
        reader = sock.makefile("rb")
        try:
            while not self.closed.is_set():
                request = self._read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                if not self._send(sock, self.handler(request)):
                    return
        except OSError:
            return
        finally:
            reader.close()

    @staticmethod
    def _read_request(reader: Any) -> HostileRequest | None:
        line = reader.readline(65536)
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = reader.readline(65536).decode("latin-1").rstrip("\r\n")
            if not raw:
                break
            name, _, value = raw.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        body = reader.read(length) if length else b""
        return HostileRequest(method, path, headers, body)

    def _send(self, sock: socket.socket, reply: Reply) -> bool:
        """Send one reply; False when the connection must close afterwards."""
        body = reply.body
        length = reply.content_length
        if length is None and isinstance(body, list | tuple):
            length = sum(len(c) for c in body if isinstance(c, bytes))
        head = [f"HTTP/1.1 {reply.status} X"]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        if length is not None:
            head.append(f"Content-Length: {length}")
        else:
            head.append("Connection: close")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for chunk in _chunks(body):
            if self.closed.is_set():
                return False
            if isinstance(chunk, Pause):
                if self.closed.wait(chunk.seconds):
                    return False
                continue
            sock.sendall(chunk)
            with self._lock:
                self.bytes_sent += len(chunk)
        return length is not None


def _chunks(body: Iterable[bytes | Pause]) -> Iterator[bytes | Pause]:
    yield from body
