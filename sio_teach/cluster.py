"""``python -m sio_teach cluster``: a real cluster on this machine — a Redis, N chat nodes as
separate processes, and nginx in front of them — until Ctrl-C.

    python -m sio_teach cluster --nodes 3 --adapter pubsub      # or sharded (Redis 7+), streams
    # cluster on http://127.0.0.1:3000/ ...                     # open it in a few browsers

What runs (each started here, each stopped on SIGINT/SIGTERM):

* **Redis**: ``--redis URL``, or a private one from :class:`~sio_teach.adapters.redis_server.RedisServer`
  (Redis 7 or newer for ``--adapter sharded``);
* **nodes**: ``python -m sio_teach.cluster node`` processes on free ports of 127.0.0.1, each the chat
  of ``examples/chat.py`` with the demo page (``web/``) on the chosen adapter, plus an event
  ``whoami`` answered with the node's name (``node1`` …);
* **nginx** (``make system-deps``) on ``--port``, the one address the clients know. Sessions must
  be sticky (an Engine.IO session lives on one node, and long-polling makes many requests): a
  request that carries a ``sid``, or starts long-polling, goes by ``ip_hash``; a WebSocket-only
  connection (``transport=websocket``, no ``sid``: one request for its whole life) needs no
  stickiness and goes round-robin. From one machine every client has the same address, so
  ``ip_hash`` sends all long-polling clients to one node; WebSocket-only clients spread over all.

When a node dies its clients reconnect through nginx to the others (nginx skips a node that refuses
connections); the cluster goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ADAPTERS = ("pubsub", "sharded", "streams")
NGINX_PLACES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")

# an nginx of our own, everything under {dir}; the ``http`` block is left open for what follows
NGINX_PREAMBLE = """
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
"""

NGINX_CONFIG = (
    NGINX_PREAMBLE
    + """  upstream sticky {{
    ip_hash;
{servers}
  }}
  upstream spread {{
{servers}
  }}
  # a WebSocket-only connection is one request: any node; everything else sticks to one node
  map "$arg_transport:$arg_sid" $pool {{
    "websocket:" spread;
    default sticky;
  }}
  server {{
    listen {host}:{port};
    location / {{
      proxy_pass http://$pool;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 60s;
      proxy_connect_timeout 2s;
    }}
  }}
}}
"""
)


def find_nginx() -> str | None:
    """The ``nginx`` binary (PATH, then the usual sbin places), or None."""
    return shutil.which("nginx") or next((p for p in NGINX_PLACES if Path(p).exists()), None)


def nginx_config(directory: str, port: int, node_ports: list[int]) -> str:
    """nginx's configuration for the nodes on ``node_ports`` behind ``HOST:port``."""
    servers = "\n".join(f"    server {HOST}:{p} max_fails=1 fail_timeout=5s;" for p in node_ports)
    return NGINX_CONFIG.format(dir=directory, host=HOST, port=port, servers=servers)


def adapter_factory(kind: str, url: str) -> Any:
    """The ``adapter=`` of a node for ``--adapter kind`` on the Redis at ``url``."""
    if kind == "pubsub":
        from sio_teach.adapters.redis import redis_adapter

        return redis_adapter(url)
    if kind == "sharded":
        from sio_teach.adapters.redis_sharded import redis_sharded_adapter

        return redis_sharded_adapter(url)
    if kind == "streams":
        from sio_teach.adapters.redis_streams import redis_streams_adapter

        return redis_streams_adapter(url)
    raise ValueError(f"unknown adapter {kind!r}: one of {', '.join(ADAPTERS)}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


# -- one node -------------------------------------------------------------------------------------


async def run_node(name: str, port: int, kind: str, redis_url: str) -> None:
    """One node: the chat and its page on ``HOST:port``, on the adapter, until SIGINT/SIGTERM."""
    from sio_teach import web
    from sio_teach.examples import stop_on_signals
    from sio_teach.examples.chat import chat_server
    from sio_teach.trace import Tracer
    from sio_teach.transports.http import listen

    stop = stop_on_signals()
    # on the streams adapter, a client cut from a node is restored by any other (its id, rooms,
    # the events it missed): connection state recovery, with the sessions kept in Redis
    recovery = kind == "streams"
    tracer = Tracer("server", sio=True, limit=0)
    adapter = adapter_factory(kind, redis_url)
    sio = chat_server(tracer, adapter, connection_state_recovery=recovery)
    sio.on("whoami", lambda socket: name)
    web.add_inspector(sio)
    wait_ready = getattr(sio.of("/").adapter, "wait_ready", None)
    if wait_ready is not None:
        await wait_ready(10.0)
    http = listen(web.make_app(sio, web.find_bundle()), port, HOST)
    print(json.dumps({"node": name, "port": port}), flush=True)
    await stop.wait()
    http.stop()
    sio.close()  # every session ends ("server shutting down"): recoverable on another node
    for nsp in list(sio.namespaces.values()):
        aclose = getattr(nsp.adapter, "aclose", None)
        if aclose is not None:
            await aclose()  # what the adapter still has to write to Redis gets there


# -- the whole cluster ------------------------------------------------------------------------


class Cluster:
    """What :func:`run_cluster` started, stopped in reverse order by :meth:`stop`."""

    def __init__(self) -> None:
        self.redis: Any = None
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.nginx: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.TemporaryDirectory(prefix="sio_teach_cluster_")

    def start_node(self, name: str, kind: str, redis_url: str) -> tuple[int, int]:
        """Start node ``name``; wait until it serves. Returns (port, pid)."""
        port = _free_port()
        command = [sys.executable, "-m", "sio_teach.cluster", "node", name, str(port), kind]
        proc = subprocess.Popen([*command, redis_url], stdout=subprocess.PIPE)
        self.nodes.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # {"node": …, "port": …} once it listens, or EOF
        if not line:
            raise RuntimeError(f"{name} did not start (exit code {proc.wait()})")
        return port, proc.pid

    def start_nginx(self, nginx: str, port: int, node_ports: list[int]) -> None:
        conf = Path(self.dir.name) / "nginx.conf"
        conf.write_text(nginx_config(self.dir.name, port, node_ports))
        command = [nginx, "-p", self.dir.name, "-c", str(conf), "-g", "daemon off;"]
        self.nginx = subprocess.Popen(command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10.0
        while not _listening(port):
            if self.nginx.poll() is not None or time.monotonic() > deadline:
                error = self.nginx.stderr.read().decode() if self.nginx.poll() is not None else ""  # type: ignore[union-attr]
                raise RuntimeError(f"nginx did not start on port {port}: {error.strip()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop nginx, the nodes (SIGTERM, then SIGKILL after 5 s), then Redis."""
        for proc in [self.nginx, *self.nodes]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [self.nginx, *self.nodes]:
            if proc is not None:
                try:
                    proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5.0)
        if self.redis is not None:
            self.redis.stop()
        self.dir.cleanup()


def run_cluster(args: argparse.Namespace) -> int:
    """The ``cluster`` command: start everything, print the URL, wait for SIGINT/SIGTERM, stop."""
    nginx = find_nginx()
    if nginx is None:
        print(
            "cluster: `nginx` not found; it balances the nodes (run `make system-deps` as root, "
            "or `apt-get install nginx`)",
            file=sys.stderr,
        )
        return 2
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    cluster = Cluster()
    try:
        from sio_teach.adapters.redis_server import RedisNotFound, RedisServer

        redis_url = args.redis
        if redis_url is None:
            try:
                cluster.redis = RedisServer(min_version=(7, 0) if args.adapter == "sharded" else ())
            except RedisNotFound as error:
                print(f"cluster: {error}", file=sys.stderr)
                return 2
            redis_url = cluster.redis.start().url
        ports = []
        for i in range(1, args.nodes + 1):
            port, pid = cluster.start_node(f"node{i}", args.adapter, redis_url)
            ports.append(port)
            print(f"node{i}: http://{HOST}:{port}/ (pid {pid})", flush=True)
        cluster.start_nginx(nginx, args.port, ports)
        print(
            f"cluster on http://{HOST}:{args.port}/ — {args.nodes} nodes, adapter {args.adapter}, "
            f"Redis {redis_url}, nginx (pid {cluster.nginx.pid}); Ctrl-C stops",  # type: ignore[union-attr]
            flush=True,
        )
        while not stop:
            time.sleep(0.2)
        print("cluster: stopping", flush=True)
        return 0
    except RuntimeError as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """The ``cluster`` subcommand of ``python -m sio_teach`` (``cli.py`` calls it)."""
    c = commands.add_parser(
        "cluster",
        parents=parents,
        help="run a cluster: a Redis, N chat nodes, nginx in front (sticky sessions)",
        description="Start a Redis (or use --redis), N chat nodes as processes on one adapter, "
        "and nginx in front of them on --port; print the URL; Ctrl-C stops everything.",
    )
    c.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    c.add_argument("--adapter", choices=ADAPTERS, default="pubsub", help="default pubsub")
    c.add_argument("--port", type=int, default=3000, help="nginx's port (default 3000)")
    c.add_argument("--redis", default=None, help="use this Redis (redis://HOST:PORT)")
    c.set_defaults(run=None, cluster=run_cluster)


def main(argv: list[str] | None = None) -> None:
    """``python -m sio_teach.cluster node NAME PORT ADAPTER REDIS_URL``: one node (the cluster
    command starts them)."""
    _, name, port, kind, redis_url = argv or sys.argv[1:]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_node(name, int(port), kind, redis_url))


if __name__ == "__main__":
    main()
