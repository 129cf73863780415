"""sio_teach — Socket.IO (Engine.IO v4, Socket.IO v5) on Tornado, readable layer by layer.

from sio_teach import Server, Client, Tracer
"""

from sio_teach.client import Client, ClientSocket
from sio_teach.errors import AckTimeoutError, ConnectError, ConnectRefused, ProtocolError
from sio_teach.server import Namespace, Server, Socket
from sio_teach.trace import Tracer

__all__ = [
    "AckTimeoutError",
    "Client",
    "ClientSocket",
    "ConnectError",
    "ConnectRefused",
    "Namespace",
    "ProtocolError",
    "Server",
    "Socket",
    "Tracer",
]
__version__ = "0.1.0"
