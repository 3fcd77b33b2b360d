"""Gateways in Python: `policy_engine.gateway.asgi.PolicyGateway` (ASGI middleware)."""
