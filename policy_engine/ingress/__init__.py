"""Protocol-neutral ingress: an HTTP request in, a request context out; a decision in, an answer out.

- `http.HttpRequest`: what any gateway knows of a call (method, path, headers,
  body, peer, TLS identity).
- `mapping.RequestMapper`: HttpRequest -> request context, with `settings`
  (identity from headers or a JWT, `identity`; OpenAI-style bodies,
  `bodies`; the client address, `network`; typed values, `values`).
- `answer`: Decision -> status, headers, error body and upstream headers, and
  the one rule for rate-limit headers.

Envoy ext_authz and rate-limit (`policy_engine.server.envoy_mapping`) and the
ASGI gateway (`policy_engine.gateway.asgi`) are thin adapters over these.
Nothing here imports a protocol's types. Import the submodules directly:
this package file stays empty so that the engine can use `answer` cheaply.
"""
