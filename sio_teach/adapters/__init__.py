"""Adapters: where rooms live and how a broadcast finds its sockets (one node, or many)."""

from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter

__all__ = ["BroadcastOptions", "MemoryAdapter"]
