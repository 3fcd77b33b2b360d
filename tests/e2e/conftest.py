"""End-to-end fixtures (defined in gateway_harness.py): processes started and stopped per test or module."""

from gateway_harness import module_stack, stack, upstream  # noqa: F401 - pytest fixtures
