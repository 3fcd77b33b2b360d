"""The server fixtures (server_harness.py) for every test module in this folder."""

from server_harness import policy_dir, server, start_server

__all__ = ["policy_dir", "server", "start_server"]
