"""Fixtures for fault, load and security tests: the server harness of tests/server,
a load generator, and `policyctl serve` as a real process."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_harness import policy_dir, start_server  # noqa: E402,F401 (fixtures for every test here)
