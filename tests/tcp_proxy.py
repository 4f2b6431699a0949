"""A TCP proxy on loopback that a test can cut: every open connection through
it is closed and new ones are refused until it is restored. It stands between
a client and a shared server, which is never touched itself."""

from __future__ import annotations

import selectors
import socket
import threading


class CuttableProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._server.close()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listening: socket.socket | None = None
        self._closed = threading.Event()
        self.restore()

    def restore(self) -> None:
        """Accept connections again."""
        server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        server.settimeout(0.2)
        self._listening = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        """Close every connection through the proxy, refuse new ones."""
        with self._lock:
            server, self._listening = self._listening, None
            doomed, self._open = self._open, set()
        if server is not None:
            server.close()
        for sock in doomed:
            sock.close()

    def close(self) -> None:
        self._closed.set()
        self.cut()

    def _accept(self, server: socket.socket) -> None:
        while not self._closed.is_set() and self._listening is server:
            try:
                client, _ = server.accept()
            except OSError:  # the timeout, or cut() closed it
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(
                target=self._pipe, args=(client, upstream), daemon=True
            ).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                sock.setblocking(True)
                selector.register(sock, selectors.EVENT_READ)
            try:
                while not self._closed.is_set():
                    for key, _ in selector.select(timeout=0.2):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        peers[key.fileobj].sendall(data)  # type: ignore[index]
            except (OSError, ValueError):
                return
            finally:
                for sock in peers:
                    sock.close()
