"""A TCP listener on a lab address: each connection handled on its own thread; `stop()` frees the port."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class Listener:
    """Accepts on `host:port` until stopped; nothing leaks when the address is taken."""

    def __init__(self, host: str, port: int, handle: Callable[[socket.socket], None], name: str) -> None:
        self._handle = handle
        self._closing = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(16)
        except OSError:
            self._socket.close()
            raise
        self._socket.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close and wait for the accept loop: only then is the port free to bind again."""
        self._closing.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=2)

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
