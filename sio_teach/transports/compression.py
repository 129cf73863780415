"""Compression on the wire, as the official server does it: HTTP compression of long-polling
answers, and WebSocket permessage-deflate.

Both are engine.io's options, with its defaults (``lib/server.ts``)::

    http_compression     on   a GET's answer of >= 1024 bytes is gzip'ed (or deflated) when the
                              request's Accept-Encoding allows it  (``httpCompression``)
    per_message_deflate  off  permessage-deflate (RFC 7692) is offered to WebSocket clients; a
                              frame of >= 1024 bytes is compressed  (``perMessageDeflate``)

Give either as ``True`` / ``False`` or as a dict of :class:`Compression` fields, e.g.
``EngineServer(per_message_deflate={"threshold": 4096})``.

When to call what: :func:`http_encoding` when a long-polling answer is about to be written
(it says which ``Content-Encoding`` to use, if any), then :func:`compress_body`; :func:`frame`
for every packet written on a WebSocket, with :func:`negotiated_deflate` of that connection.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sio_teach.eio.packet import Packet, encode_ws, websocket_frame

ENCODINGS = ("gzip", "deflate")  # what engine.io offers, in its order of preference


@dataclass(frozen=True, slots=True)
class Compression:
    """How to compress: below ``threshold`` bytes nothing is compressed (it would not pay)."""

    threshold: int = 1024
    level: int = zlib.Z_DEFAULT_COMPRESSION  # zlib's 0..9; the default is 6, as Node's zlib
    mem_level: int = 8


def compression_options(value: bool | Mapping[str, Any] | Compression | None) -> Compression | None:
    """An option as given (``True``, ``False``, a dict, a :class:`Compression`) → the options to
    use, or ``None`` for off."""
    if value is None or value is False:
        return None
    if value is True:
        return Compression()
    if isinstance(value, Compression):
        return value
    return Compression(**value)


# -- HTTP long-polling ------------------------------------------------------------------------


def choose_encoding(accept_encoding: str) -> str | None:
    """The content coding to answer with, from a request's ``Accept-Encoding`` header: ``gzip``
    or ``deflate``, whichever the client prefers (its q-values, then its own order, then ours),
    or ``None`` (``identity``). As engine.io's ``accepts(req).encodings(["gzip", "deflate"])``.

    >>> choose_encoding("gzip, deflate, br"), choose_encoding("deflate;q=1, gzip;q=0.5")
    ('gzip', 'deflate')
    >>> choose_encoding("br"), choose_encoding("gzip;q=0"), choose_encoding("*")
    (None, None, 'gzip')
    """
    accepted: dict[str, tuple[float, int]] = {}  # name -> (its best q, where it came first)
    for order, item in enumerate(accept_encoding.lower().split(",")):
        name, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > accepted.get(name.strip(), (-1.0, 0))[0]:
            accepted[name.strip()] = (q, order)
    ranked = []
    for index, coding in enumerate(ENCODINGS):
        specific = coding in accepted  # an exact name beats the wildcard "*" (it is more specific)
        q, order = accepted.get(coding) or accepted.get("*", (0.0, 0))
        if q > 0:
            ranked.append((-q, -specific, order, index, coding))
    return min(ranked)[-1] if ranked else None


def http_encoding(options: Compression | None, size: int, accept_encoding: str) -> str | None:
    """Which ``Content-Encoding`` a long-polling answer of ``size`` bytes gets: none when
    compression is off or the answer is under the threshold, else :func:`choose_encoding`."""
    if options is None or size < options.threshold:
        return None
    return choose_encoding(accept_encoding)


def compress_body(body: bytes, encoding: str, options: Compression) -> bytes:
    """``body`` compressed with ``encoding`` (``gzip``, or ``deflate`` = the zlib format, as
    Node's ``zlib.createDeflate`` writes it)."""
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=options.level, mtime=0)
    return zlib.compress(body, options.level)


# -- WebSocket permessage-deflate ---------------------------------------------------------------


def tornado_compression_options(options: Compression | None) -> dict[str, Any] | None:
    """What ``WebSocketHandler.get_compression_options`` returns: ``None`` offers no
    permessage-deflate; a dict accepts a client's offer, with these zlib settings."""
    if options is None:
        return None
    return {"compression_level": options.level, "mem_level": options.mem_level}


def negotiated_deflate(connection: object) -> Callable[[bytes], bytes] | None:
    """The compressor of a Tornado WebSocket connection, if the client negotiated
    permessage-deflate (``None`` otherwise). Tornado builds it from the parameters both sides
    agreed on: with context takeover (the default) it keeps the previous messages as its
    dictionary, with ``server_no_context_takeover`` it starts afresh for each message. Its
    ``compress`` returns the deflate stream without the trailing ``00 00 ff ff`` (RFC 7692 §7.2.1)."""
    compressor = getattr(connection, "_compressor", None)  # Tornado's, for write_message
    return None if compressor is None else compressor.compress


def frame(packet: Packet, deflate: Callable[[bytes], bytes] | None, threshold: int) -> bytes:
    """The frame that carries ``packet`` on one WebSocket: compressed (RSV1) when the connection
    negotiated permessage-deflate and the encoded packet has at least ``threshold`` bytes; else
    the packet's own uncompressed frame, built once and shared (``Packet.server_frame``)."""
    if deflate is None:
        return packet.server_frame()
    payload = encode_ws(packet)
    size = len(payload)
    if isinstance(payload, str) and size < threshold:
        size = len(payload.encode())  # in bytes: a character may take up to 4
    if size < threshold:
        return packet.server_frame()
    return websocket_frame(payload, deflate)
