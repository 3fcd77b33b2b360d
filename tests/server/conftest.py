"""The server fixtures (server_harness.py, process_harness.py) for every test module in this folder."""

from process_harness import serve
from server_harness import policy_dir, server, start_server

__all__ = ["policy_dir", "serve", "server", "start_server"]
