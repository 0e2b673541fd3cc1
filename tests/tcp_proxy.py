"""A TCP proxy on 127.0.0.1 that a test can cut: between the app and PostgreSQL, or a broker.

    proxy = TcpProxy("127.0.0.1", 5432).start()      # proxy.port: connect here instead
    proxy.cut_at_commit(after=b"INSERT INTO broadcasts", forward=False)
    ...                                              # that transaction's COMMIT never reaches the server
    proxy.cut_at_commit(after=b"INSERT INTO broadcasts", forward=True)
    ...                                              # it is committed, but the answer never comes back
    proxy.close_all(); proxy.refuse(); proxy.accept()  # drop every connection; refuse new ones; serve again
    proxy.stop()

PostgreSQL clients (psycopg) send COMMIT as a simple-query message, ``Q`` + length + ``COMMIT\\0``;
the proxy watches the client's bytes for it on a connection that has sent the marker since its last
COMMIT. Either way the client sees its connection lost during COMMIT — the one case where it cannot
know whether the change was saved.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass

COMMIT_MESSAGE = b"Q\x00\x00\x00\x0bCOMMIT\x00"


@dataclass
class _CommitCut:
    marker: bytes
    forward: bool  # True: let the COMMIT through and lose the answer; False: lose the COMMIT


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cuts = 0  # connections cut at a COMMIT so far
        self._lock = threading.Lock()
        self._cut: _CommitCut | None = None
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> TcpProxy:
        """Listen on ``port`` (0: one the system picks, then kept across refuse/accept)."""
        self.port = port
        self.accept()
        return self

    def accept(self) -> None:
        """Listen (again, on the same port once one was given) and relay new connections."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._serve, args=(listener,), daemon=True, name=f"proxy-{self.port}").start()

    def refuse(self) -> None:
        """Stop listening: new connections are refused (open ones are left alone)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def close_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._hang_up(pair)

    def stop(self) -> None:
        self.refuse()
        self.close_all()

    # --- faults ------------------------------------------------------------------------------

    def cut_at_commit(self, *, after: bytes, forward: bool) -> None:
        """Cut the next connection that sends COMMIT having sent ``after`` since its last COMMIT."""
        with self._lock:
            self._cut = _CommitCut(after, forward)

    # --- relaying ----------------------------------------------------------------------------

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by refuse()
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = (client, server)
            with self._lock:
                self._pairs.add(pair)
            marked = threading.Event()
            threading.Thread(target=self._client_to_server, args=(pair, marked), daemon=True).start()

    def _client_to_server(self, pair: tuple[socket.socket, socket.socket], marked: threading.Event) -> None:
        client, server = pair
        answer_lost = threading.Event()
        threading.Thread(target=self._server_to_client, args=(pair, answer_lost), daemon=True).start()
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._hang_up(pair)
                return
            action = None
            with self._lock:
                cut = self._cut
                if cut is not None and cut.marker in data:
                    marked.set()
                if cut is not None and marked.is_set() and COMMIT_MESSAGE in data:
                    self._cut = None
                    self.cuts += 1
                    action = "forward" if cut.forward else "drop"
                elif COMMIT_MESSAGE in data:
                    marked.clear()
            if action == "drop":  # the COMMIT never reaches the server
                self._hang_up(pair)
                return
            if action == "forward":  # the server commits; its reply is dropped with the connection
                answer_lost.set()
            try:
                server.sendall(data)
            except OSError:
                self._hang_up(pair)
                return

    def _server_to_client(self, pair: tuple[socket.socket, socket.socket], answer_lost: threading.Event) -> None:
        client, server = pair
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                data = b""
            if not data or answer_lost.is_set():
                self._hang_up(pair)
                return
            try:
                client.sendall(data)
            except OSError:
                self._hang_up(pair)
                return

    def _hang_up(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            self._pairs.discard(pair)
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
