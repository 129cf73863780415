"""Reliability and security: codec properties, fuzzing, hostile input, limits, session ids, CORS."""
