"""The cluster tests of ``test_cluster.py`` again, every node on sharded Pub/Sub (Redis 7+): two
Python nodes on :class:`~sio_teach.adapters.redis_sharded.ShardedRedisAdapter` and a Node.js node
on the official ``createShardedAdapter``, in each ``subscriptionMode``. Without a Redis 7 the
tests are skipped, naming the binary (``redis-server`` >= 7, from ``make system-deps``)."""

from __future__ import annotations

import pytest

from tests.adapters.test_cluster import (
    test_binary_across_nodes,
    test_broadcast_from_every_node_reaches_every_client_once_in_order,
    test_broadcast_with_acks_across_nodes,
    test_fetch_sockets_across_nodes,
    test_rooms_and_except_across_nodes,
    test_server_side_emit_across_nodes,
    test_sockets_join_and_disconnect_sockets_across_nodes,
)

__all__ = [  # collected here too, with this module's adapter_kind
    "test_binary_across_nodes",
    "test_broadcast_from_every_node_reaches_every_client_once_in_order",
    "test_broadcast_with_acks_across_nodes",
    "test_fetch_sockets_across_nodes",
    "test_rooms_and_except_across_nodes",
    "test_server_side_emit_across_nodes",
    "test_sockets_join_and_disconnect_sockets_across_nodes",
]


@pytest.fixture(params=["sharded:static", "sharded:dynamic", "sharded:dynamic-private"])
def adapter_kind(request: pytest.FixtureRequest) -> str:
    return request.param
