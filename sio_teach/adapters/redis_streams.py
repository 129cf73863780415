"""The Redis Streams adapter: the rooms of a namespace across many nodes, through one Redis stream,
and connection state recovery on any node.

    from sio_teach.adapters.redis_streams import redis_streams_adapter

    sio = Server(adapter=redis_streams_adapter("redis://127.0.0.1:6379"),
                 connection_state_recovery=True)
    await sio.of("/").adapter.wait_ready()      # reading the stream, subscribed to its channels

It speaks the format of the official ``@socket.io/redis-streams-adapter`` 0.3.x (``dist/adapter.js``,
on socket.io-adapter's ``ClusterAdapter``), so Python nodes and Node.js nodes share one Redis:

* **the stream** ``socket.io`` (``XADD … MAXLEN ~ 10000 *``) carries what must not be lost: a
  broadcast without acks (``type`` 3), ``socketsJoin`` (4), ``socketsLeave`` (5),
  ``disconnectSockets`` (6). An entry has four string fields: ``uid`` (the node's adapter, 16 hex
  digits), ``nsp``, ``type`` (a number, as text) and ``data``: JSON, or — when a broadcast's data
  holds bytes — msgpack in base64 (the reader tells them apart by a leading ``{``). Every node
  reads the stream with ``XREAD BLOCK`` from the last id it saw, and drops its own entries.
* **Pub/Sub** carries what is only worth something now (each message msgpack
  ``{type, data, uid, nsp}``): a broadcast with acks (3 with a ``requestId``), ``fetchSockets``
  (7), ``serverSideEmit`` (9), on ``socket.io#<nsp>#``; the responses (8, 10, 11, 12) go to the
  asker's own channel ``socket.io#<nsp>#<uid>#``. The number of servers is
  ``PUBSUB NUMSUB socket.io#<nsp>#``.
* **sessions** (connection state recovery): a socket that ends for a recoverable reason is kept
  as ``SET sio:session:<pid> <base64 msgpack {sid, pid, rooms, data}> PX <maxDisconnectionDuration>``;
  an event's offset is the id of its stream entry. A client that comes back — to any node — with
  ``{pid, offset}`` gets its session (``GET`` + ``DEL`` in one transaction) and every broadcast
  after that offset that reached its rooms (``XRANGE``), as the reference's ``restoreSession``.

The cluster logic (what a request asks, how the answers are counted, the timeouts) is the Pub/Sub
adapter's (``adapters/redis.py``); this module only translates its requests and responses to the
``ClusterAdapter`` messages and moves them over the stream or Pub/Sub.

**No entry lost, none written twice.** The reference loses an ``XADD`` whose connection drops.
Here every entry for the stream goes through an *outbox*, in order: a batch of up to 100 is written
by one Lua script, ``APPEND_SCRIPT``, which runs atomically and records in a small hash,
``<stream>#writer#<uid>``, the sequence number of the batch's last entry and the ids it got.
The batch stays at the head of the outbox until a reply comes; when the connection drops (or Redis
is down, or restarts), the same batch is sent again, and the script, seeing its sequence number
already written, answers the recorded ids instead of appending again. So each entry is in the
stream exactly once, in the node's order, whatever happened to the replies (the hash expires an
hour after the node's last write). The reader never loses its place: it keeps the last id it
read and, after a failure, reads on from there.

**Local delivery.** Without recovery a broadcast reaches this node's clients at once; with
recovery it is delivered when its entry is written, with the entry's id as its offset (the
reference does the same), so the offset a client holds is the same on every node. A client being
restored is given the events up to a mark (``_restore``) and, from its socket joining on, only what
comes after the mark: nothing twice, nothing missed between the two.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

import msgpack
from redis.asyncio.client import PubSub

from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter, Send
from sio_teach.adapters.redis import (
    RedisAdapter,
    RequestType,
    _opts,
    _packet,
    _raw_opts,
    _unpack,
)
from sio_teach.adapters.redis_base import FAILURES, MAY_CONTAIN_BINARY, OUTBOX_LIMIT, MessageType
from sio_teach.sio.packet import Packet, PacketType, has_binary
from sio_teach.sio.recovery import Session
from sio_teach.tasks import spawn

log = logging.getLogger("sio_teach.adapters.redis_streams")
BATCH = 100  # entries per script call, and per XREAD
WRITER_TTL_MS = 3_600_000  # how long a node's last batch is remembered for its retries
RESTORE_MAX_CALLS = 100  # reference RESTORE_SESSION_MAX_XRANGE_CALLS
OFFSET = re.compile(r"[0-9]+-[0-9]+")  # a stream id; the reference refuses anything else

# KEYS: the stream, this node's writer hash. ARGV: the batch's first sequence number, its size,
# MAXLEN, the hash's expiry (ms), then 8 strings per entry (uid, nsp, type, data: field, value).
APPEND_SCRIPT = """
local last = tonumber(redis.call('HGET', KEYS[2], 'seq') or '-1')
if last >= tonumber(ARGV[1]) then
  return redis.call('HGET', KEYS[2], 'ids')
end
local ids = {}
for m = 0, tonumber(ARGV[2]) - 1 do
  local b = 4 + 8 * m
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*',
    ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4],
    ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8])
end
local joined = table.concat(ids, ' ')
redis.call('HSET', KEYS[2], 'seq', tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1, 'ids', joined)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return joined
"""


# the Pub/Sub adapter's requests, as ClusterAdapter messages (and back)
TO_CLUSTER = {
    RequestType.BROADCAST: MessageType.BROADCAST,
    RequestType.REMOTE_JOIN: MessageType.SOCKETS_JOIN,
    RequestType.REMOTE_LEAVE: MessageType.SOCKETS_LEAVE,
    RequestType.REMOTE_DISCONNECT: MessageType.DISCONNECT_SOCKETS,
    RequestType.REMOTE_FETCH: MessageType.FETCH_SOCKETS,
    RequestType.SERVER_SIDE_EMIT: MessageType.SERVER_SIDE_EMIT,
}
FROM_CLUSTER = {cluster: kind for kind, cluster in TO_CLUSTER.items()}
PERSISTENT = {MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE, MessageType.DISCONNECT_SOCKETS}
RESPONSES = {
    MessageType.FETCH_SOCKETS_RESPONSE,
    MessageType.SERVER_SIDE_EMIT_RESPONSE,
    MessageType.BROADCAST_CLIENT_COUNT,
    MessageType.BROADCAST_ACK,
}


def redis_streams_adapter(
    url: str,
    *,
    stream_name: str = "socket.io",
    max_len: int = 10_000,
    channel_prefix: str = "socket.io",
    session_key_prefix: str = "sio:session:",
    requests_timeout: float = 5.0,
) -> Callable[[str, Send], RedisStreamsAdapter]:
    """The ``adapter=`` argument of :class:`~sio_teach.server.Server` for a cluster sharing the
    Redis at ``url`` through the stream ``stream_name`` (trimmed to about ``max_len`` entries;
    reference ``streamName``, ``maxLen``, ``channelPrefix``, ``sessionKeyPrefix``)."""

    return functools.partial(
        RedisStreamsAdapter,
        url=url,
        stream_name=stream_name,
        max_len=max_len,
        channel_prefix=channel_prefix,
        session_key_prefix=session_key_prefix,
        requests_timeout=requests_timeout,
    )


# -- the wire format -------------------------------------------------------------------------


def _msgpack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=str)


def encode_entry(message: dict[str, Any]) -> dict[str, str]:
    """A ClusterAdapter message as the fields of a stream entry (reference ``encode``)."""
    fields = {"uid": message["uid"], "nsp": message["nsp"], "type": str(int(message["type"]))}
    data = message.get("data")
    if data:
        if message["type"] in MAY_CONTAIN_BINARY and has_binary(data):
            fields["data"] = base64.b64encode(_msgpack(data)).decode()
        else:
            fields["data"] = json.dumps(data, separators=(",", ":"))
    return fields


def decode_entry(fields: dict[Any, Any]) -> dict[str, Any]:
    """The fields of a stream entry (bytes or str) as a ClusterAdapter message (``decode``)."""
    text = {_str(k): _str(v) for k, v in fields.items()}
    message: dict[str, Any] = {
        "uid": text.get("uid"),
        "nsp": text.get("nsp"),
        "type": int(text.get("type", "0")),
    }
    data = text.get("data")
    if data:
        message["data"] = json.loads(data) if data.startswith("{") else _unpack(b64(data))
    return message


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def _next_id(entry_id: str) -> str:
    """The smallest id after ``entry_id`` (exclusive ranges need Redis 6.2; reference
    ``nextOffset``)."""
    ms, seq = _stream_id(entry_id)
    return f"{ms}-{seq + 1}"


def _reaches(rooms: set[str], opts: dict[str, Any]) -> bool:
    """Whether a broadcast with ``opts`` reached a socket in ``rooms`` (``shouldIncludePacket``)."""
    targets, excluded = opts.get("rooms") or [], opts.get("except") or []
    return (not targets or any(r in rooms for r in targets)) and not any(
        r in rooms for r in excluded
    )


def encode_session(session: Session) -> str:
    """A session as the reference stores it: base64 of msgpack ``{sid, pid, rooms, data}``."""
    raw = {"sid": session.sid, "pid": session.pid, "rooms": sorted(session.rooms)}
    return base64.b64encode(_msgpack({**raw, "data": session.data})).decode()


def decode_session(text: str | bytes) -> Session:
    raw = _unpack(b64(_str(text)))
    data = raw.get("data")
    return Session(
        raw["sid"], raw["pid"], set(raw.get("rooms") or ()), {} if data is None else data
    )


@dataclass
class _Entry:
    """One entry waiting in the outbox; ``on_added(id)`` runs once it is in the stream."""

    seq: int
    fields: dict[str, str]
    on_added: Callable[[str], None] | None = None


class RedisStreamsAdapter(RedisAdapter):
    """The Pub/Sub adapter's bookkeeping and requests, carried as the streams adapter does."""

    def __init__(
        self,
        nsp: str,
        send: Send,
        *,
        url: str,
        stream_name: str = "socket.io",
        max_len: int = 10_000,
        channel_prefix: str = "socket.io",
        session_key_prefix: str = "sio:session:",
        requests_timeout: float = 5.0,
    ) -> None:
        super().__init__(nsp, send, url=url, key=channel_prefix, requests_timeout=requests_timeout)
        self.uid = secrets.token_hex(8)  # ClusterAdapter randomId()
        self.stream = stream_name
        self.max_len = max_len
        self.session_key_prefix = session_key_prefix
        # the public channel takes requests; the inherited server_count() counts its subscribers
        self.channel = self.request_channel = f"{channel_prefix}#{nsp}#"
        self.response_channel = self.specific_response_channel = f"{self.channel}{self.uid}#"
        self.writer_key = f"{stream_name}#writer#{self.uid}"
        self.append_script = self.redis.register_script(APPEND_SCRIPT)
        self.reading = asyncio.Event()  # set once the reader knows where to start
        self.last_id: str | None = None  # the last stream entry read
        self.own_last_id = "0-0"  # the last entry of ours written
        self.retries = 0  # batches sent again after a failure
        self._seq = 0
        self._stream_outbox: deque[_Entry] = deque()
        self._wake = asyncio.Event()
        self._requesters: OrderedDict[str, str] = OrderedDict()  # requestId -> the asker's uid
        self._restored: dict[str, tuple[int, int]] = {}  # sid -> the mark of its restore
        self._persisting: set[asyncio.Task[None]] = set()  # sessions being written to Redis

    # -- running -------------------------------------------------------------------------------

    def _workers(self) -> list[tuple[Coroutine[Any, Any, None], str]]:
        return [
            *super()._workers(),
            (self._reader(), "Redis stream reader"),
            (self._writer(), "Redis stream writer"),
        ]

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait until this node reads the stream and listens to its channels (TimeoutError)."""
        async with asyncio.timeout(timeout):
            await super().wait_ready(timeout)
            await self.reading.wait()

    async def _subscribe(self, pubsub: PubSub) -> int:
        await pubsub.subscribe(self.channel, self.response_channel)
        return 2

    async def _reader(self) -> None:
        """Read the stream from the last id seen (at first: its end), for ever; after a
        failure wait (50 ms doubling to 1 s) and read on from the same id."""
        delay = 0.05
        while True:
            try:
                if self.last_id is None:
                    top = await self.redis.xrevrange(self.stream, count=1)
                    self.last_id = _str(top[0][0]) if top else "0-0"
                    self.reading.set()
                streams = await self.redis.xread({self.stream: self.last_id}, BATCH, 1000)
                self._works("read")
                delay = 0.05
            except FAILURES as error:
                self._failed("read", error)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)
                continue
            for _, entries in streams or ():
                for entry_id, fields in entries:
                    self.last_id = _str(entry_id)
                    try:
                        self._on_entry(self.last_id, decode_entry(fields))
                    except Exception:  # a malformed entry (or a bug) must not stop the reader
                        log.exception("streams adapter %s: cannot handle %s", self.nsp, entry_id)

    async def _writer(self) -> None:
        """Write the outbox in order, a batch at a time; a batch is sent again until Redis
        answers (``APPEND_SCRIPT`` makes that safe)."""
        delay = 0.05
        while True:
            if not self._stream_outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = list(self._stream_outbox)[:BATCH]
            args: list[Any] = [batch[0].seq, len(batch), self.max_len, WRITER_TTL_MS]
            for entry in batch:
                for name in ("uid", "nsp", "type", "data"):
                    args += [name, entry.fields.get(name, "")]
            try:
                ids = _str(await self.append_script(keys=[self.stream, self.writer_key], args=args))
            except FAILURES as error:
                self.retries += 1
                self._failed("append", error)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)
                continue
            self._works("append")
            delay = 0.05
            for entry, entry_id in zip(batch, ids.split(), strict=True):
                self._stream_outbox.popleft()
                self.own_last_id = entry_id
                if entry.on_added is not None:
                    entry.on_added(entry_id)

    def _append(
        self, message: dict[str, Any], on_added: Callable[[str], None] | None = None
    ) -> None:
        """Queue one entry for the stream; the writer adds the queue in order."""
        self._start()
        if len(self._stream_outbox) >= OUTBOX_LIMIT:
            self.lost += 1
            return self._failed("append", f"{OUTBOX_LIMIT} entries wait already; one dropped")
        self._seq += 1
        self._stream_outbox.append(_Entry(self._seq, encode_entry(message), on_added))
        self._wake.set()

    # -- the Pub/Sub adapter's requests and responses, as ClusterAdapter messages -----------------

    def _message(self, kind: MessageType, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": int(kind), "data": data, "uid": self.uid, "nsp": self.nsp}

    def _request(self, body: dict[str, Any], encode: Any = None) -> None:
        body = dict(body)
        kind = TO_CLUSTER[RequestType(body.pop("type"))]
        if kind == MessageType.SERVER_SIDE_EMIT:
            body["packet"] = body.pop("data")
        if "opts" in body:
            body["opts"] = {"flags": {}, **body["opts"]}
        message = self._message(kind, body)
        if kind in PERSISTENT:
            self._append(message)
        else:
            self._publish(self.channel, _msgpack(message))

    def _respond(self, body: dict[str, Any], encode: Any = None) -> None:
        rid = body["requestId"]
        kind = body.get("type")
        if kind == RequestType.SERVER_SIDE_EMIT:
            data = {"requestId": rid, "packet": body.get("data")}
            message = self._message(MessageType.SERVER_SIDE_EMIT_RESPONSE, data)
        elif kind == RequestType.BROADCAST_CLIENT_COUNT:
            data = {"requestId": rid, "clientCount": body["clientCount"]}
            message = self._message(MessageType.BROADCAST_CLIENT_COUNT, data)
        elif kind == RequestType.BROADCAST_ACK:
            data = {"requestId": rid, "packet": body.get("packet")}
            message = self._message(MessageType.BROADCAST_ACK, data)
        else:  # REMOTE_FETCH's answer
            data = {"requestId": rid, "sockets": body.get("sockets") or []}
            message = self._message(MessageType.FETCH_SOCKETS_RESPONSE, data)
        asker = self._requesters.get(rid)
        if asker is not None:
            self._publish(f"{self.channel}{asker}#", _msgpack(message))

    def _on_message(self, message: dict[str, Any]) -> None:
        """One Pub/Sub message: a request on the public channel, or a response on ours."""
        try:
            decoded = _unpack(message["data"])
            if decoded.get("uid") != self.uid and decoded.get("nsp") == self.nsp:
                self._on_cluster(decoded)
        except Exception:
            log.exception("streams adapter %s: cannot handle a Pub/Sub message", self.nsp)

    def _on_cluster(self, message: dict[str, Any], entry_id: str | None = None) -> None:
        """A ClusterAdapter message from another node (``onMessage``, ``onResponse``)."""
        kind, data, uid = message["type"], message.get("data") or {}, message.get("uid")
        rid = data.get("requestId")
        if kind in RESPONSES:
            response: dict[str, Any] = {"requestId": rid}
            if kind == MessageType.FETCH_SOCKETS_RESPONSE:
                response["sockets"] = data.get("sockets") or []
            elif kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
                response.update(type=RequestType.SERVER_SIDE_EMIT, data=data.get("packet"))
            elif kind == MessageType.BROADCAST_CLIENT_COUNT:
                response.update(
                    type=RequestType.BROADCAST_CLIENT_COUNT, clientCount=data["clientCount"]
                )
            else:
                response.update(type=RequestType.BROADCAST_ACK, packet=data.get("packet"))
            return self._on_response(response)
        if kind == MessageType.BROADCAST and rid is None:
            if entry_id is not None:  # (a broadcast outside the stream has no offset)
                self._deliver(data["packet"], data["opts"], entry_id)
            return
        if kind not in FROM_CLUSTER:
            return  # heartbeats: the streams adapter counts servers with PUBSUB NUMSUB
        request = {**data, "uid": uid, "type": FROM_CLUSTER[MessageType(kind)]}
        if kind == MessageType.SERVER_SIDE_EMIT:
            request["data"] = request.pop("packet", [])
        if rid is not None:
            self._requesters[rid] = uid
            while len(self._requesters) > 1000:
                self._requesters.popitem(last=False)
        self._on_request(request)

    def _on_entry(self, entry_id: str, message: dict[str, Any]) -> None:
        if message["nsp"] == self.nsp and message["uid"] != self.uid:
            self._on_cluster(message, entry_id)

    def _with_offset(self, packet: dict[str, Any] | Packet, opts: dict[str, Any]) -> bool:
        """Whether a broadcast's event carries its offset (``addOffsetIfNecessary``)."""
        kind, ack = (
            (packet.type, packet.id)
            if isinstance(packet, Packet)
            else (packet.get("type"), packet.get("id"))
        )
        volatile = (opts.get("flags") or {}).get("volatile")
        recovering = self.namespace is not None and self.namespace.recovery is not None
        return recovering and kind == PacketType.EVENT and ack is None and volatile is None

    def _deliver(self, packet: dict[str, Any], raw_opts: dict[str, Any], entry_id: str) -> None:
        """A broadcast read from the stream (or ours, just written) to this node's clients."""
        data = list(packet.get("data") or [])
        if self._with_offset(packet, raw_opts):
            data.append(entry_id)
        opts = _opts(raw_opts)
        mark = _stream_id(entry_id)
        skip = {sid for sid, upto in self._restored.items() if mark <= upto}
        if skip:  # restored sockets got this one with their missed events
            opts = replace(opts, except_=opts.except_ | skip)
        kind = packet.get("type", PacketType.EVENT)
        MemoryAdapter.broadcast(self, Packet(kind, self.nsp, data), opts)

    # -- the adapter seam ----------------------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> list[str]:
        if opts.flags.get("local"):
            return MemoryAdapter.broadcast(self, packet, opts)
        raw = {"packet": _packet(packet), "opts": _raw_opts(opts)}
        message = self._message(MessageType.BROADCAST, raw)
        if self._with_offset(packet, raw["opts"]):  # delivered here once its offset is known
            self._append(
                message, lambda entry_id: self._deliver(raw["packet"], raw["opts"], entry_id)
            )
            return self.recipients(opts)
        sids = MemoryAdapter.broadcast(self, packet, opts)
        self._append(message)
        return sids

    async def fetch_all_rooms(self) -> set[str]:
        """This node's rooms: the streams adapter has no request for the others' (neither has
        the reference's ClusterAdapter)."""
        return self.all_rooms()

    def del_all(self, sid: str) -> None:
        self._restored.pop(sid, None)
        super().del_all(sid)

    # -- connection state recovery, in Redis: any node restores a session ------------------------

    def stamp(self, data: list[Any], opts: BroadcastOptions) -> list[Any]:
        return data  # the offset is the stream entry's id, appended once it is written

    def persist_session(self, session: Session) -> None:
        nsp = self.namespace
        assert nsp is not None and nsp.recovery is not None
        ttl = round(nsp.recovery.options.max_disconnection_duration * 1000)
        key, value = self.session_key_prefix + session.pid, encode_session(session)
        task = spawn(self._set_session(key, value, ttl), "persisting a session")
        self._persisting.add(task)
        task.add_done_callback(self._persisting.discard)

    async def _shutdown(self) -> None:
        """Let the sessions of a closing server reach Redis (a node stopping, "server shutting
        down", persists every session: another node restores them), then close."""
        if self._persisting:
            await asyncio.wait(self._persisting, timeout=2.0)
        await super()._shutdown()

    async def _set_session(self, key: str, value: str, ttl: int) -> None:
        try:
            await self.redis.set(key, value, px=ttl)
        except FAILURES as error:
            self._failed("persist session", error)

    async def restore_session(self, pid: Any, offset: Any) -> Session | None:
        if not isinstance(pid, str) or not isinstance(offset, str) or not OFFSET.fullmatch(offset):
            return None
        try:
            return await self._restore(pid, offset)
        except FAILURES as error:
            self._failed("restore session", error)
            return None

    async def _restore(self, pid: str, offset: str) -> Session | None:
        """The session with the broadcasts after ``offset`` that reached its rooms, read up to a
        mark at least as far as this node has delivered (so that it misses nothing); from the
        mark on, the reader delivers (and skips what the mark covers)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            raw, _ = (
                await pipe.get(self.session_key_prefix + pid)
                .delete(self.session_key_prefix + pid)
                .execute()
            )
        if not raw or not await self.redis.xrange(self.stream, offset, offset):
            return None
        session = decode_session(raw)
        mark = offset
        for _ in range(RESTORE_MAX_CALLS):
            entries = await self.redis.xrange(self.stream, _next_id(mark), "+", count=1000)
            for entry_id, fields in entries:
                mark = _str(entry_id)
                message = decode_entry(fields)
                data = message.get("data") or {}
                if (
                    message["nsp"] != self.nsp
                    or message["type"] != MessageType.BROADCAST
                    or "requestId" in data
                    or not self._with_offset(data["packet"], data["opts"])
                    or not _reaches(session.rooms, data["opts"])
                ):
                    continue
                session.missed.append([*(data["packet"].get("data") or []), mark])
            delivered = max(_stream_id(self.last_id or "0-0"), _stream_id(self.own_last_id))
            if not entries and delivered <= _stream_id(mark):
                break
        self._restored[session.sid] = _stream_id(mark)
        return session
