"""``python -m sio_teach serve`` / ``python -m sio_teach trace URL``: see :mod:`sio_teach.cli`."""

from sio_teach.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
