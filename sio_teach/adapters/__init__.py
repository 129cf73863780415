"""Adapters: where rooms live and how a broadcast finds its sockets (one node, or many).

``MemoryAdapter`` (one node) is the default. ``sio_teach.adapters.redis.redis_adapter(url)`` shares
the rooms of many nodes through Redis (it needs the ``redis`` extra, so it is not imported here).
"""

from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter

__all__ = ["BroadcastOptions", "MemoryAdapter"]
