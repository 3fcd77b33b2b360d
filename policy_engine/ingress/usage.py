"""A model call's real usage, wherever a gateway finds it: a JSON `usage` block,
usage response headers, or one line of a proxy's JSON access log.

Usage is the `usage.*` section of the request context: prompt and completion
tokens, the cached part of the prompt and the reasoning part of the completion
(OpenAI's convention: both are included in their totals), and the model that
served the call, so that a `usage` clause can price each token class.

The access-log shapes are the three the reference configs write (deploy/):
nginx's `log_format` of flat keys, Caddy's JSON access log (`resp_headers`
and a `log_append`ed `policy_request_id`) and Traefik's JSON access log
(`request_X-Request-Id`, `origin_X-Usage-...`). Header names are matched
whatever their case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The usage fields, as the request schema's `usage` section names them (a test keeps them in step).
TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "cached_input_tokens", "reasoning_tokens")
MAX_MODEL_LEN = 256  # a model name longer than this is not one


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_input_tokens: int | None = None  # of prompt_tokens
    reasoning_tokens: int | None = None  # of completion_tokens
    model: str | None = None  # the model that served the call

    @property
    def known(self) -> bool:
        """Whether it says what the call cost: at least one token count."""
        return any(getattr(self, f) is not None for f in TOKEN_FIELDS)

    def context_fields(self) -> dict[str, Any]:
        """The `Context` slots it fills (`usage_prompt_tokens`, ...)."""
        return {f"usage_{k}": v for k, v in dataclasses.asdict(self).items()}

    def with_model(self, model: str | None) -> Usage:
        """This usage, naming `model` when it names none itself."""
        return self if self.model is not None or model is None else dataclasses.replace(self, model=model)


@dataclass(frozen=True, slots=True)
class UsageHeaders:
    """The response headers that carry usage (the gateways' settings), lower-cased."""

    prompt_tokens: str = "x-usage-prompt-tokens"
    completion_tokens: str = "x-usage-completion-tokens"
    cached_input_tokens: str = "x-usage-cached-input-tokens"
    reasoning_tokens: str = "x-usage-reasoning-tokens"
    model: str = "x-usage-model"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, getattr(self, f.name).lower())

    def items(self) -> list[tuple[str, str]]:
        """(usage field, header) pairs."""
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]

    def read(self, get: Callable[[str], Any]) -> Usage:
        """The usage in headers, `get(header)` giving a header's value (or None)."""
        return Usage(**{name: _value(name, get(header)) for name, header in self.items()})


DEFAULT_USAGE_HEADERS = UsageHeaders()


def count(value: Any) -> int | None:
    """A token count from a JSON number or a header's text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        v = value.strip()
        return int(v) if v.isdigit() else None
    return value if isinstance(value, int) and value >= 0 else None


def model_name(value: Any) -> str | None:
    """A model name from JSON or a header; None for anything else."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    return v if v and len(v) <= MAX_MODEL_LEN and v != "-" else None


def _value(name: str, raw: Any) -> Any:
    return model_name(raw) if name == "model" else count(raw)


def _detail(u: Mapping[str, Any], parent: str, key: str) -> int | None:
    d = u.get(parent)
    return count(d.get(key)) if isinstance(d, Mapping) else None


def usage_block(u: Mapping[str, Any], model: Any = None) -> Usage:
    """One `usage` object, in the names of OpenAI's chat/completions, its responses
    API (`input_tokens`, `*_details`) or Anthropic's messages (whose `input_tokens`
    leave out the cache reads and writes: added back, so that totals mean one thing)."""
    if "cache_read_input_tokens" in u or "cache_creation_input_tokens" in u:
        fresh, read, written = (
            count(u.get(k)) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        )
        prompt = None if fresh is None else fresh + (read or 0) + (written or 0)
        return Usage(prompt, count(u.get("output_tokens")), read, None, model_name(model))
    prompt = count(u.get("prompt_tokens", u.get("input_tokens")))
    completion = count(u.get("completion_tokens", u.get("output_tokens")))
    cached = count(u.get("cached_input_tokens"))
    if cached is None:
        cached = _detail(u, "prompt_tokens_details", "cached_tokens")
    if cached is None:
        cached = _detail(u, "input_tokens_details", "cached_tokens")
    reasoning = count(u.get("reasoning_tokens"))
    if reasoning is None:
        reasoning = _detail(u, "completion_tokens_details", "reasoning_tokens")
    if reasoning is None:
        reasoning = _detail(u, "output_tokens_details", "reasoning_tokens")
    return Usage(prompt, completion, cached, reasoning, model_name(model if model is not None else u.get("model")))


def usage_from_json(doc: Any) -> Usage:
    """The usage of an OpenAI-style answer: its `usage` block and its `model`."""
    u = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(u, dict):
        return Usage()
    return usage_block(u, doc.get("model"))


# Where each access-log shape keeps the request id.
_REQUEST_ID_KEYS = ("request_id", "policy_request_id", "request_x-request-id")
# Prefixes of Traefik's access-log fields for response headers: the upstream's, then the caller's.
_RESPONSE_PREFIXES = ("origin_", "downstream_")


@dataclass(frozen=True, slots=True)
class LoggedUsage:
    request_id: str
    usage: Usage


def usage_from_log(doc: Any, headers: UsageHeaders = DEFAULT_USAGE_HEADERS) -> LoggedUsage | None:
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
    usage = Usage(**{name: _logged(flat, caddy, header, name) for name, header in headers.items()})
    return LoggedUsage(rid, usage) if usage.known else None


def _logged(flat: dict[str, Any], caddy: dict[str, Any], header: str, key: str) -> Any:
    if (v := _value(key, flat.get(key))) is not None:  # nginx: our log_format's flat keys
        return v
    values = caddy.get(header)
    if isinstance(values, list) and values and (v := _value(key, values[0])) is not None:
        return v
    for prefix in _RESPONSE_PREFIXES:  # Traefik
        if (v := _value(key, flat.get(prefix + header))) is not None:
            return v
    return None
