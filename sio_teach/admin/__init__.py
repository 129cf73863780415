"""The official Admin UI (npm ``@socket.io/admin-ui`` 0.5.x) for a sio_teach server.

    sio = Server()
    sio.instrument(auth={"username": "admin", "password": hash_password("changeit")})

``protocol.py`` is what the UI hears and says, pure; ``instrument.py`` hooks it into the server;
``ui.py`` serves the UI's page from ``node_modules`` (``python -m sio_teach serve --admin``).
"""

from sio_teach.admin.instrument import Admin, hash_password, instrument

__all__ = ["Admin", "hash_password", "instrument"]
