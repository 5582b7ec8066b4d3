"""Streaming synthesis on Ray Serve (paper section 5): generation, codec decoding, voices and the HTTP API."""
