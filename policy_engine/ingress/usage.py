"""A model call's real token usage, wherever a gateway finds it: a JSON `usage` block,
usage response headers, or one line of a proxy's JSON access log.

The access-log shapes are the three the reference configs write (deploy/):
nginx's `log_format` of flat keys, Caddy's JSON access log (`resp_headers`
and a `log_append`ed `policy_request_id`) and Traefik's JSON access log
(`request_X-Request-Id`, `origin_X-Usage-...`). Header names are matched
whatever their case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_USAGE_HEADERS = ("x-usage-prompt-tokens", "x-usage-completion-tokens")


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def known(self) -> bool:
        return self.prompt_tokens is not None or self.completion_tokens is not None


def count(value: Any) -> int | None:
    """A token count from a JSON number or a header's text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        v = value.strip()
        return int(v) if v.isdigit() else None
    return value if isinstance(value, int) and value >= 0 else None


def usage_from_json(doc: Any) -> Usage:
    """The `usage` block of an OpenAI-style answer (chat/completions names, then the responses API's)."""
    u = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(u, dict):
        return Usage()
    return Usage(
        count(u.get("prompt_tokens", u.get("input_tokens"))), count(u.get("completion_tokens", u.get("output_tokens")))
    )


# Where each access-log shape keeps the request id.
_REQUEST_ID_KEYS = ("request_id", "policy_request_id", "request_x-request-id")
# Prefixes of Traefik's access-log fields for response headers: the upstream's, then the caller's.
_RESPONSE_PREFIXES = ("origin_", "downstream_")


@dataclass(frozen=True, slots=True)
class LoggedUsage:
    request_id: str
    usage: Usage


def usage_from_log(doc: Any, headers: tuple[str, str] = DEFAULT_USAGE_HEADERS) -> LoggedUsage | None:
    """The request id and usage of one access-log entry (a decoded JSON line), or None
    when it names no request id or carries no usage."""
    if not isinstance(doc, dict):
        return None
    flat = {str(k).lower(): v for k, v in doc.items()}
    rid = next((v for k in _REQUEST_ID_KEYS if isinstance(v := flat.get(k), str) and v and v != "-"), None)
    if rid is None:
        return None
    resp = flat.get("resp_headers")  # Caddy: {"X-Usage-Prompt-Tokens": ["12"]}
    caddy = {str(k).lower(): v for k, v in resp.items()} if isinstance(resp, Mapping) else {}
    usage = Usage(
        *(_logged(flat, caddy, name.lower(), key) for name, key in zip(headers, ("prompt_tokens", "completion_tokens")))
    )
    return LoggedUsage(rid, usage) if usage.known else None


def _logged(flat: dict[str, Any], caddy: dict[str, Any], header: str, key: str) -> int | None:
    if (v := count(flat.get(key))) is not None:  # nginx: our log_format's flat keys
        return v
    values = caddy.get(header)
    if isinstance(values, list) and values and (v := count(values[0])) is not None:
        return v
    for prefix in _RESPONSE_PREFIXES:  # Traefik
        if (v := count(flat.get(prefix + header))) is not None:
            return v
    return None
