"""The HTTP server that sio_teach listens with: Tornado's, with the limits a public server needs.

Tornado's defaults suit a server behind a careful proxy, not one facing clients directly: a
connection may take an hour to send its headers (slowloris), a body may trickle in forever, and
when the process runs out of file descriptors the accept loop spins at 100 % CPU, logging a
traceback per attempt. :func:`listen` (and :class:`HTTPServer`) set:

* ``header_timeout`` — the headers of a request, and the idle time between two requests on a
  kept-alive connection, within 60 s (Node.js: ``headersTimeout`` 60 s);
* ``body_timeout`` — a request body within 60 s (a POST is at most ``maxPayload`` bytes);
* a reserve of file descriptors: a new connection that would leave fewer than ``fd_reserve`` free
  is closed at once (its client sees a reset), and when ``accept()`` fails with "too many open
  files" the server stops accepting for a moment and says so once, instead of spinning.

WebSockets are not subject to the HTTP timeouts once open: the Engine.IO heartbeat watches them.
Mounting the Engine.IO handler on an HTTP server of your own? Pass the same two timeouts to it
(``HTTPServer(app, idle_connection_timeout=60, body_timeout=60)``).
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
from tornado.web import Application

from sio_teach.transports.polling import EngineFirst

log = logging.getLogger("sio_teach.http")

OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass(frozen=True, slots=True)
class Limits:
    """What a client may hold of the server. Seconds and file descriptors."""

    header_timeout: float = 60.0  # also the idle time allowed between requests
    body_timeout: float = 60.0
    fd_reserve: int = 32  # descriptors kept free for the server's own use (files, Redis, logs)
    accept_pause: float = 0.5  # accepting stops this long when the descriptors run out


DEFAULT_LIMITS = Limits()


class HTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server with :class:`Limits`. Build it with :func:`listen`, or as Tornado's
    (``HTTPServer(app, limits=Limits(...))`` then ``add_sockets``)."""

    def initialize(  # type: ignore[override]
        self, request_callback: Any, *, limits: Limits = DEFAULT_LIMITS, **options: Any
    ) -> None:
        options.setdefault("idle_connection_timeout", limits.header_timeout)
        options.setdefault("body_timeout", limits.body_timeout)
        if isinstance(request_callback, Application):  # its Engine.IO paths first
            request_callback = EngineFirst(request_callback)
        super().initialize(request_callback, **options)
        self.limits = limits
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.fd_cap = soft - limits.fd_reserve if soft != resource.RLIM_INFINITY else None
        self.refused = 0  # connections closed at once for want of descriptors
        self._warned = False

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Start accepting on ``sockets`` (our accept loop instead of Tornado's)."""
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._resume(sock)

    def _resume(self, sock: socket.socket) -> None:
        """(Re)start accepting on ``sock``, unless the server was stopped meanwhile."""
        if sock.fileno() not in self._sockets:
            return
        loop = tornado.ioloop.IOLoop.current()
        loop.add_handler(sock, self._accept, loop.READ)
        self._handlers[sock.fileno()] = lambda: loop.remove_handler(sock)

    def _accept(self, sock: socket.socket, events: int) -> None:
        for _ in range(128):  # as Tornado: a bounded batch, so other work is not starved
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in OUT_OF_DESCRIPTORS:
                    raise
                self._out_of_descriptors(sock, error)
                return
            # Descriptors are handed out lowest first, so all of 0 … fileno-1 are in use: a
            # high number means few are left. Refuse before the last ones go.
            if self.fd_cap is not None and connection.fileno() >= self.fd_cap:
                connection.close()
                self.refused += 1
                self._warn_once(f"{self.refused} connections refused: file descriptors nearly out")
                continue
            self._handle_connection(connection, address)

    def _out_of_descriptors(self, sock: socket.socket, error: OSError) -> None:
        """``accept()`` failed for want of descriptors: pause accepting instead of spinning."""
        self._warn_once(f"accept() failed ({error.strerror}); pausing new connections")
        fd = sock.fileno()
        self._handlers[fd]()  # stop listening for new connections…
        self._handlers[fd] = lambda: None  # (a stop() meanwhile has nothing to remove)
        tornado.ioloop.IOLoop.current().call_later(self.limits.accept_pause, self._resume, sock)

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s (said once; see HTTPServer.refused)", message)


def listen(
    app: Application, port: int, host: str = "127.0.0.1", limits: Limits = DEFAULT_LIMITS
) -> HTTPServer:
    """Serve ``app`` on ``host:port`` (port 0: a free one)."""
    server = HTTPServer(app, limits=limits)
    server.add_sockets(tornado.netutil.bind_sockets(port, host))
    return server
