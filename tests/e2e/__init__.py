"""End-to-end tests: real node processes on 127.0.0.1."""
