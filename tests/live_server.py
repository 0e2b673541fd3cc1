"""Werkzeug's development server (what `flask run` and `make run` serve with) on a free loopback port.

For tests that must go through a real server rather than the test client: raw bytes on the request
line, or a shell script of curl commands. The server runs in a thread of the test process, so its
requests use the test's database connection (each its own session, as with the test client) and
see the test's data; the test waits on the server, so the connection is never used twice at once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def dev_server(app: Flask, *, threaded: bool = False) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields the base URL (``http://127.0.0.1:PORT``).

    ``threaded``: a thread per request, for a browser or client that sends several at once; only
    for tests whose data is committed (``committing``) or that touch no data, since the requests
    then use connections of their own.
    """
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()
        assert not thread.is_alive(), "the development server did not stop"


def raw_get(base_url: str, target: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET with ``target`` on the request line exactly as given (http.client would refuse non-ASCII)."""
    host, port = base_url.removeprefix("http://").split(":")
    lines = [b"GET " + target + b" HTTP/1.1", f"Host: {host}:{port}".encode(), b"Connection: close"]
    lines += [f"{name}: {value}".encode() for name, value in (headers or {}).items()]
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
