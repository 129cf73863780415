"""Benchmarks: one Node load generator against several Socket.IO servers (see README.md)."""
