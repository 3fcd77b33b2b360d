"""Envoy's ext_authz and rate-limit messages <-> policy-engine's request context and decisions.

Pure functions and one small class (`EnvoyMapper`, which keeps the JWKS file
loaded); no server here. The request side turns an ext_authz CheckRequest or a
ShouldRateLimit request into a request-context dict (the JSON shape of the
design), plus warnings for values that were present but unusable. The response
side turns a decision-like mapping or object (see `convert.field_of`) into the
messages Envoy acts on.

Where identity comes from is a deployment choice (`EnvoyMappingSettings.identity`):
headers set by a trusted authentication filter in front of us, or a bearer JWT
verified here against a JWKS file. An unusable token raises `MappingError`,
which `deny_for_mapping_error` turns into a 401.
"""

from __future__ import annotations

import codecs
import ipaddress
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
from google.protobuf import struct_pb2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from policy_engine.context import FIELDS, VERIFICATION_RANK
from policy_engine.proto.envoy.config.core.v3 import base_pb2 as core
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2 as rls
from policy_engine.proto.google.rpc import status_pb2
from policy_engine.server.convert import DEFAULT_HTTP_STATUS, effect_name, field_of, rule_ids_of

# google.rpc.Code values used in ext_authz statuses.
RPC_OK, RPC_PERMISSION_DENIED, RPC_RESOURCE_EXHAUSTED, RPC_UNAUTHENTICATED = 0, 7, 8, 16

# How a context field's raw (string or claim) value is coerced.
_INT_FIELDS = frozenset({"request.max_tokens", "request.prompt_tokens", "client.asn",
                         "usage.prompt_tokens", "usage.completion_tokens"})
_FLOAT_FIELDS = frozenset({"request.ts", "account.age_days"})
_LIST_FIELDS = frozenset({"account.labels", "api_key.scopes"})


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeaderNames(_Settings):
    """Request headers (lower-case, as Envoy sends them) that carry identity and hints."""

    account_id: str = "x-account-id"
    org: str = "x-org-id"
    tier: str = "x-account-tier"
    age_days: str = "x-account-age-days"
    verification: str = "x-account-verification"
    payment_fingerprint: str = "x-payment-fingerprint"
    labels: str = "x-account-labels"  # comma separated
    api_key_id: str = "x-api-key-id"
    api_key_scopes: str = "x-api-key-scopes"  # comma or space separated
    request_id: str = "x-request-id"
    user_agent: str = "user-agent"
    # A gateway that already counted prompt tokens can say so; otherwise they are estimated.
    prompt_tokens: str | None = "x-prompt-tokens"
    # Fallback for the model when the body does not name one (e.g. "x-ai-eg-model").
    model: str | None = None

    def identity(self) -> dict[str, str]:
        return {
            "account.id": self.account_id, "account.org": self.org, "account.tier": self.tier,
            "account.age_days": self.age_days, "account.verification": self.verification,
            "account.payment_fingerprint": self.payment_fingerprint, "account.labels": self.labels,
            "api_key.id": self.api_key_id, "api_key.scopes": self.api_key_scopes,
        }


class JwtSettings(_Settings):
    jwks_file: Path
    header: str = "authorization"  # "Bearer <token>"
    issuer: str | None = None
    audience: str | list[str] | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"])
    leeway_seconds: float = Field(default=30.0, ge=0)
    require_claims: list[str] = Field(default_factory=lambda: ["exp", "sub"])
    # A request without a token is refused (401) unless this is False.
    required: bool = True
    # context field -> claim name
    claims: dict[str, str] = Field(default_factory=lambda: {
        "account.id": "sub", "account.org": "org", "account.tier": "tier",
        "account.verification": "verification", "account.payment_fingerprint": "payment_fingerprint",
        "account.labels": "labels", "api_key.id": "api_key_id", "api_key.scopes": "scope",
    })
    # account.age_days: from this claim directly, else from an account-creation epoch claim.
    age_days_claim: str | None = "age_days"
    created_claim: str | None = "acct_created"

    @model_validator(mode="after")
    def _known_fields(self) -> "JwtSettings":
        _check_paths({claim: path for path, claim in self.claims.items()}, "jwt.claims")
        return self


DEFAULT_DESCRIPTOR_KEYS: dict[str, str] = {
    "account_id": "account.id", "org_id": "account.org", "tier": "account.tier",
    "account_age_days": "account.age_days", "verification": "account.verification",
    "payment_fingerprint": "account.payment_fingerprint", "labels": "account.labels",
    "api_key_id": "api_key.id", "remote_address": "client.ip", "client_ip": "client.ip",
    "country": "client.country", "asn": "client.asn", "user_agent": "client.user_agent",
    "model": "request.model", "request_id": "request.id", "prompt_tokens": "request.prompt_tokens",
    "max_tokens": "request.max_tokens",
}


class EnvoyMappingSettings(_Settings):
    identity: Literal["headers", "jwt"] = "headers"
    headers: HeaderNames = HeaderNames()
    jwt: JwtSettings | None = None
    # Client IP: x-envoy-external-address (set by Envoy with use_remote_address), then the
    # x-forwarded-for entry `xff_num_trusted_hops` from the right (None: ignore XFF), then
    # the TCP peer Envoy saw (attributes.source.address).
    trust_envoy_external_address: bool = True
    xff_num_trusted_hops: int | None = Field(default=None, ge=0)
    parse_body: bool = True
    max_body_bytes: int = Field(default=4 << 20, gt=0)  # parse at most this much of a body
    chars_per_token: float = Field(default=4.0, gt=0)
    # ShouldRateLimit: descriptor entry key -> context field; unknown keys are ignored.
    descriptor_keys: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DESCRIPTOR_KEYS))
    # Copy the request's hits (hits_addend, 0 meaning 1) into this context field too.
    hits_addend_field: str | None = None
    # Response side.
    flags_header: str = "x-policy-flags"  # sent upstream on allowed requests
    rate_limit_headers_on_allow: bool = True  # x-ratelimit-* back to the caller when admitted

    @model_validator(mode="after")
    def _consistent(self) -> "EnvoyMappingSettings":
        if self.identity == "jwt" and self.jwt is None:
            raise ValueError("identity 'jwt' needs a jwt section (jwks_file at least)")
        _check_paths(self.descriptor_keys, "descriptor_keys")
        if self.hits_addend_field is not None:
            _check_paths({"hits_addend_field": self.hits_addend_field}, "hits_addend_field")
        return self


def _check_paths(mapping: dict[str, str], where: str) -> None:
    for key, path in mapping.items():
        if "." not in path or path.replace(".", "_", 1) not in FIELDS:
            raise ValueError(f"{where}: {key!r} maps to {path!r}, which is not a request context field")


_DEFAULT_SETTINGS = EnvoyMappingSettings()


class MappingError(Exception):
    """The request cannot be mapped (e.g. a bad token); the server denies it with this reason."""

    def __init__(self, reason: str, http_status: int = 401, rpc_code: int = RPC_UNAUTHENTICATED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status
        self.rpc_code = rpc_code


@dataclass
class MappedRequest:
    context: dict[str, Any]  # request-context JSON shape; absent fields are null
    warnings: list[str] = field(default_factory=list)
    body_truncated: bool = False
    cost: int = 1  # ShouldRateLimit hits (0 on the wire means 1)
    domain: str = ""


# --- value coercion ---------------------------------------------------------


def _split_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [p for p in re.split(r"[,\s]+", str(value)) if p]


def _coerce(path: str, raw: Any) -> Any:
    """The typed value for a context field, or ValueError saying why not."""
    if path in _LIST_FIELDS:
        return _split_list(raw)
    if path in _INT_FIELDS:
        if isinstance(raw, bool):
            raise ValueError("expected an integer")
        value = int(raw.strip()) if isinstance(raw, str) else int(raw)
        if value < 0 or (isinstance(raw, float) and raw != value):
            raise ValueError("expected a non-negative integer")
        return value
    if path in _FLOAT_FIELDS:
        if isinstance(raw, bool):
            raise ValueError("expected a number")
        value = float(raw)
        if not math.isfinite(value) or value < 0:
            raise ValueError("expected a non-negative number")
        return value
    if path == "account.verification":
        value = str(raw).strip().lower()
        if value not in VERIFICATION_RANK:
            raise ValueError(f"expected one of {list(VERIFICATION_RANK)}")
        return value
    if path == "client.ip":
        ip = parse_ip(str(raw))
        if ip is None:
            raise ValueError("not an IP address")
        return ip
    if isinstance(raw, (dict, list)):
        raise ValueError("expected a string")
    return str(raw)


def _set(ctx: dict[str, Any], path: str, raw: Any, warnings: list[str], source: str) -> None:
    section, name = path.split(".", 1)
    try:
        value = _coerce(path, raw)
    except (ValueError, TypeError, OverflowError) as e:
        warnings.append(f"{source}: ignored {raw!r} for {path}: {e}")
        return
    ctx.setdefault(section, {})[name] = value


def _get(ctx: dict[str, Any], path: str) -> Any:
    section, name = path.split(".", 1)
    return ctx.get(section, {}).get(name)


# --- client address -----------------------------------------------------------


def parse_ip(text: str) -> str | None:
    """A canonical IP from an address that may carry a port or brackets ('[::1]:80', '1.2.3.4:5')."""
    t = text.strip()
    if t.startswith("["):
        t = t[1:].split("]", 1)[0]
    elif t.count(":") == 1:
        t = t.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(t))
    except ValueError:
        return None


def client_ip(source_address: str | None, headers: dict[str, str], s: EnvoyMappingSettings) -> str | None:
    if s.trust_envoy_external_address and (v := headers.get("x-envoy-external-address")):
        if ip := parse_ip(v):
            return ip
    if s.xff_num_trusted_hops is not None and (xff := headers.get("x-forwarded-for")):
        hops = [h for h in (p.strip() for p in xff.split(",")) if h]
        i = len(hops) - 1 - s.xff_num_trusted_hops
        # Fewer hops than trusted proxies: the header cannot be trusted; use the peer.
        if i >= 0 and (ip := parse_ip(hops[i])):
            return ip
    return parse_ip(source_address) if source_address else None


# --- bodies -------------------------------------------------------------------


class _Stop(Exception):
    """End of input (or a syntax error) inside a value; carries what was read of it."""

    def __init__(self, partial: Any) -> None:
        self.partial = partial


_WS = re.compile(r"[ \t\n\r]*")
_STR_CHUNK = re.compile(r'[^"\\]*')
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_MAX_DEPTH = 64


class _LenientJson:
    """Parses as much of a JSON text as is there: a cut-off body yields its readable prefix."""

    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def ws(self) -> None:
        self.i = _WS.match(self.s, self.i).end()  # type: ignore[union-attr]

    def value(self, depth: int) -> Any:
        self.ws()
        if self.i >= len(self.s) or depth > _MAX_DEPTH:
            raise _Stop(None)
        c = self.s[self.i]
        if c == "{":
            return self.obj(depth + 1)
        if c == "[":
            return self.arr(depth + 1)
        if c == '"':
            return self.string()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return val
        m = _NUMBER.match(self.s, self.i)
        if not m or m.end() == len(self.s):  # nothing, or a number that may be cut short
            raise _Stop(None)
        self.i = m.end()
        return json.loads(m.group())

    def string(self) -> str:
        out: list[str] = []
        self.i += 1
        while True:
            m = _STR_CHUNK.match(self.s, self.i)
            out.append(m.group())  # type: ignore[union-attr]
            self.i = m.end()  # type: ignore[union-attr]
            if self.i >= len(self.s):
                raise _Stop("".join(out))
            if self.s[self.i] == '"':
                self.i += 1
                return "".join(out)
            esc = self.s[self.i + 1: self.i + 2]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                self.i += 2
            elif esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", self.s[self.i + 2: self.i + 6]):
                code = int(self.s[self.i + 2: self.i + 6], 16)
                self.i += 6
                if 0xD800 <= code < 0xDC00 and len(self.s) - self.i < 6:
                    raise _Stop("".join(out))  # the low half of the pair was cut off
                if 0xD800 <= code < 0xDC00 and re.fullmatch(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", self.s[self.i: self.i + 6]):
                    low = int(self.s[self.i + 2: self.i + 6], 16)
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    self.i += 6
                out.append(chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd")
            else:
                raise _Stop("".join(out))

    def obj(self, depth: int) -> dict[str, Any]:
        d: dict[str, Any] = {}
        self.i += 1
        while True:
            self.ws()
            if self.s.startswith("}", self.i):
                self.i += 1
                return d
            if not self.s.startswith('"', self.i):
                raise _Stop(d)
            try:
                key = self.string()
            except _Stop:
                raise _Stop(d) from None
            self.ws()
            if not self.s.startswith(":", self.i):
                raise _Stop(d)
            self.i += 1
            try:
                d[key] = self.value(depth)
            except _Stop as stop:
                if stop.partial is not None:
                    d[key] = stop.partial
                raise _Stop(d) from None
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
            elif not self.s.startswith("}", self.i):
                raise _Stop(d)

    def arr(self, depth: int) -> list[Any]:
        items: list[Any] = []
        self.i += 1
        while True:
            self.ws()
            if self.s.startswith("]", self.i):
                self.i += 1
                return items
            try:
                items.append(self.value(depth))
            except _Stop as stop:
                if stop.partial is not None:
                    items.append(stop.partial)
                raise _Stop(items) from None
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
            elif not self.s.startswith("]", self.i):
                raise _Stop(items)


def lenient_json(text: str) -> tuple[Any, bool]:
    """(value, complete): the whole document, or the readable prefix of a cut or broken one."""
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        pass
    try:
        return _LenientJson(text).value(0), False
    except _Stop as stop:
        return stop.partial, False


def _texts(content: Any) -> list[str]:
    """Text of a message content: a string, or content parts ({type: text, text}), or nested."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, dict):
        text = content.get("text")
        if isinstance(text, str):
            return [text]
        return _texts(content.get("content")) if "content" in content else []
    if isinstance(content, list):
        return [t for part in content for t in _texts(part)]
    return []


@dataclass
class BodyInfo:
    model: str | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    complete: bool = True


def parse_llm_body(text: str) -> BodyInfo:
    """Model, prompt and max_tokens of an OpenAI-style chat/completions or completions body.

    The prompt concatenates (newline-separated) a top-level `system`/`instructions`,
    the message contents (strings or content-part arrays), a completions `prompt`
    (string or list of strings) and a responses-style `input`. Never raises.
    """
    doc, complete = lenient_json(text)
    info = BodyInfo(complete=complete)
    if not isinstance(doc, dict):
        return info
    if isinstance(doc.get("model"), str):
        info.model = doc["model"]
    parts: list[str] = []
    for key in ("system", "instructions"):
        parts += _texts(doc.get(key))
    messages = doc.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict):
                parts += _texts(m.get("content"))
    for key in ("prompt", "input"):
        value = doc.get(key)
        if isinstance(value, list):
            parts += [t for item in value for t in _texts(item)]
        else:
            parts += _texts(value)
    if parts or any(k in doc for k in ("messages", "prompt", "input")):
        info.prompt = "\n".join(parts)
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        v = doc.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            info.max_tokens = v
            break
    return info


def estimate_tokens(chars: int, chars_per_token: float) -> int:
    return math.ceil(chars / chars_per_token)


# --- JWT ----------------------------------------------------------------------


class JwksCache:
    """The keys of a JWKS file, re-read when the file changes; the last good set survives a bad edit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: int | None = None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._refresh(initial=True)

    def _refresh(self, initial: bool = False) -> None:
        try:
            mtime = os.stat(self.path).st_mtime_ns
            if mtime == self._mtime:
                return
            keyset = jwt.PyJWKSet.from_json(self.path.read_text())
        except (OSError, jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError) as e:
            if initial:
                raise ValueError(f"{self.path}: cannot load JWKS: {e}") from e
            return
        self._keys = {k.key_id: k for k in keyset.keys}
        self._mtime = mtime

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        self._refresh()
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise MappingError(f"invalid token: no key {kid!r} in the JWKS" if kid else "invalid token: no kid header")


def verify_jwt(token: str, s: JwtSettings, keys: JwksCache) -> dict[str, Any]:
    """The verified claims, or MappingError saying what is wrong with the token."""
    try:
        header = jwt.get_unverified_header(token)
        key = keys.key_for(header.get("kid"))
        opts: dict[str, Any] = {"require": list(s.require_claims)}
        if s.audience is None:
            opts["verify_aud"] = False
        return jwt.decode(
            token, key=key, algorithms=s.algorithms, audience=s.audience, issuer=s.issuer,
            leeway=s.leeway_seconds, options=opts,
        )
    except jwt.ExpiredSignatureError:
        raise MappingError("token expired") from None
    except jwt.InvalidTokenError as e:
        raise MappingError(f"invalid token: {e}") from None


def _identity_from_claims(ctx: dict[str, Any], claims: dict[str, Any], s: JwtSettings,
                          now: float, warnings: list[str]) -> None:
    for path, claim in s.claims.items():
        if claims.get(claim) is not None:
            _set(ctx, path, claims[claim], warnings, f"jwt claim {claim}")
    if s.age_days_claim and claims.get(s.age_days_claim) is not None:
        _set(ctx, "account.age_days", claims[s.age_days_claim], warnings, f"jwt claim {s.age_days_claim}")
    elif s.created_claim and claims.get(s.created_claim) is not None:
        try:
            age = max(0.0, (now - float(claims[s.created_claim])) / 86400.0)
        except (TypeError, ValueError):
            warnings.append(f"jwt claim {s.created_claim}: ignored {claims[s.created_claim]!r}: not an epoch")
        else:
            _set(ctx, "account.age_days", age, warnings, f"jwt claim {s.created_claim}")


# --- request side -------------------------------------------------------------


def http_headers(http: Any) -> dict[str, str]:
    """Lower-case header map, from `headers` or (encode_raw_headers) `header_map`."""
    if http.headers:
        return dict(http.headers)
    out: dict[str, str] = {}
    for h in http.header_map.headers:
        value = h.value or h.raw_value.decode("utf-8", "replace")
        key = h.key.lower()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


class EnvoyMapper:
    """Maps Envoy requests with one settings object (and its loaded JWKS)."""

    def __init__(self, settings: EnvoyMappingSettings | None = None) -> None:
        self.settings = settings or EnvoyMappingSettings()
        jwt_settings = self.settings.jwt
        self._jwks = JwksCache(jwt_settings.jwks_file) if jwt_settings and self.settings.identity == "jwt" else None

    def map_check(self, req: authz.CheckRequest, now: float | None = None) -> MappedRequest:
        """ext_authz CheckRequest -> request context. Raises MappingError for a refused token."""
        s = self.settings
        attrs = req.attributes
        http = attrs.request.http
        headers = http_headers(http)
        out = MappedRequest(context={})
        ctx, warnings = out.context, out.warnings
        if attrs.request.HasField("time"):
            ctx["request"] = {"ts": attrs.request.time.seconds + attrs.request.time.nanos / 1e9}
        now = now if now is not None else ctx.get("request", {}).get("ts", time.time())

        request_id = headers.get(s.headers.request_id) or http.id
        if request_id:
            _set(ctx, "request.id", request_id, warnings, "request id")
        self._identity(ctx, headers, now, warnings)
        source = attrs.source.address.socket_address.address if attrs.source.HasField("address") else None
        if ip := client_ip(source, headers, s):
            ctx.setdefault("client", {})["ip"] = ip
        if ua := headers.get(s.headers.user_agent):
            _set(ctx, "client.user_agent", ua, warnings, f"header {s.headers.user_agent}")
        self._body(http, headers, out)
        return out

    def _identity(self, ctx: dict[str, Any], headers: dict[str, str], now: float, warnings: list[str]) -> None:
        s = self.settings
        if s.identity == "headers":
            for path, name in s.headers.identity().items():
                if name in headers:
                    _set(ctx, path, headers[name], warnings, f"header {name}")
            return
        assert s.jwt is not None and self._jwks is not None
        raw = headers.get(s.jwt.header, "")
        scheme, _, token = raw.strip().partition(" ")
        if not raw:
            if s.jwt.required:
                raise MappingError(f"missing bearer token in {s.jwt.header}")
            return
        if scheme.lower() != "bearer" or not token.strip():
            raise MappingError(f"{s.jwt.header}: expected 'Bearer <token>'")
        claims = verify_jwt(token.strip(), s.jwt, self._jwks)
        _identity_from_claims(ctx, claims, s.jwt, now, warnings)

    def _body(self, http: Any, headers: dict[str, str], out: MappedRequest) -> None:
        s = self.settings
        ctx, warnings = out.context, out.warnings
        raw: bytes = http.raw_body or http.body.encode("utf-8")
        body_info = BodyInfo()
        if s.parse_body and raw:
            # final=False: a multi-byte character cut at the end is dropped, not replaced.
            text = codecs.getincrementaldecoder("utf-8")("replace").decode(raw[: s.max_body_bytes], final=False)
            body_info = parse_llm_body(text)
            length = headers.get("content-length", "")
            declared = int(length) if length.isdigit() else len(raw)
            missing = max(0, declared - len(raw)) + max(0, len(raw) - s.max_body_bytes)
            out.body_truncated = missing > 0 or not body_info.complete
            if not body_info.complete:
                warnings.append("body: not complete JSON; used the readable prefix")
        else:
            missing = 0
        model = body_info.model or (headers.get(s.headers.model) if s.headers.model else None)
        if model:
            _set(ctx, "request.model", model, warnings, "body model")
        if body_info.prompt is not None:
            ctx.setdefault("request", {})["prompt"] = body_info.prompt
        if body_info.max_tokens is not None:
            ctx.setdefault("request", {})["max_tokens"] = body_info.max_tokens
        given = headers.get(s.headers.prompt_tokens) if s.headers.prompt_tokens else None
        if given is not None:
            _set(ctx, "request.prompt_tokens", given, warnings, f"header {s.headers.prompt_tokens}")
        if _get(ctx, "request.prompt_tokens") is None and body_info.prompt is not None:
            # A cut body: the unread bytes are (nearly all) prompt text, so count them too.
            chars = len(body_info.prompt) + missing
            ctx.setdefault("request", {})["prompt_tokens"] = estimate_tokens(chars, s.chars_per_token)

    def map_rate_limit(self, req: rls.RateLimitRequest) -> MappedRequest:
        """ShouldRateLimit request -> request context (descriptor entries) and cost (hits)."""
        s = self.settings
        out = MappedRequest(context={}, domain=req.domain, cost=req.hits_addend or 1)
        for d in req.descriptors:
            if d.HasField("hits_addend"):
                out.cost = d.hits_addend.value or 1
                break
        for d in req.descriptors:
            for e in d.entries:
                path = s.descriptor_keys.get(e.key)
                if path is None:
                    continue  # e.g. generic_key or header_match entries meant for other services
                if _get(out.context, path) is None:
                    _set(out.context, path, e.value, out.warnings, f"descriptor {e.key}")
                elif _get(out.context, path) != _coerce_or_none(path, e.value):
                    out.warnings.append(f"descriptor {e.key}: kept the first value for {path}")
        if s.hits_addend_field:
            _set(out.context, s.hits_addend_field, out.cost, out.warnings, "hits_addend")
        return out


def _coerce_or_none(path: str, raw: Any) -> Any:
    try:
        return _coerce(path, raw)
    except (ValueError, TypeError, OverflowError):
        return None


# --- response side ------------------------------------------------------------


def _tightest_limit(decision: Any) -> Any:
    """The consulted limit closest to (or furthest over) its maximum."""
    # Shadow limits are never enforced, so they do not speak to the caller.
    limits = [lim for lim in field_of(decision, "limits", default=()) if not field_of(lim, "shadow", default=False)]
    if not limits:
        return None

    def rank(lim: Any) -> tuple[bool, float, float]:
        over = bool(field_of(lim, "over", "exceeded", default=False))
        remaining = float(field_of(lim, "remaining", default=0.0))
        return (not over, remaining, -float(field_of(lim, "reset_seconds", "reset", default=0.0)))

    return min(limits, key=rank)


def rate_limit_headers(decision: Any, effect: str, lim: Any) -> dict[str, str]:
    """x-ratelimit-limit/-remaining/-reset from `lim` (the decision's `_tightest_limit`, or None)
    and retry-after on throttle, the decision's own headers winning."""
    out: dict[str, str] = {}
    if lim is not None:
        reset = math.ceil(float(field_of(lim, "reset_seconds", "reset", default=0.0)))
        out["x-ratelimit-limit"] = str(int(float(field_of(lim, "max", default=0.0))))
        out["x-ratelimit-remaining"] = str(max(0, int(float(field_of(lim, "remaining", default=0.0)))))
        out["x-ratelimit-reset"] = str(reset)
    if effect == "throttle":
        retry = field_of(decision, "retry_after", "retry_after_seconds")
        if retry is None and lim is not None:
            retry = field_of(lim, "reset_seconds", "reset")
        out["retry-after"] = str(max(1, math.ceil(float(retry or 1))))
    out.update({str(k).lower(): str(v) for k, v in field_of(decision, "headers", default={}).items()})
    return out


def _header_options(headers: dict[str, str], overwrite: bool) -> list[core.HeaderValueOption]:
    action = (core.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD if overwrite
              else core.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD)
    return [core.HeaderValueOption(header=core.HeaderValue(key=k, value=v), append_action=action)
            for k, v in headers.items()]


def _metadata(values: dict[str, Any]) -> struct_pb2.Struct:
    st = struct_pb2.Struct()
    st.update({k: v for k, v in values.items() if v not in (None, "", [])})
    return st


def _denied(http_status: int, rpc_code: int, reason: str, err_type: str, rule: str | None,
            headers: dict[str, str]) -> authz.CheckResponse:
    body = json.dumps({"error": {"type": err_type, "reason": reason, "rule": rule}})
    hdrs = {"content-type": "application/json", **headers}
    return authz.CheckResponse(
        status=status_pb2.Status(code=rpc_code, message=reason),
        denied_response=authz.DeniedHttpResponse(
            status={"code": http_status}, headers=_header_options(hdrs, overwrite=True), body=body,
        ),
    )


def build_check_response(decision: Any, settings: EnvoyMappingSettings | None = None) -> authz.CheckResponse:
    """The ext_authz answer for a decision: deny 403 / throttle 429 with a JSON error body
    and rate-limit headers; allow / flag as OK, with flags for the upstream in `flags_header`."""
    s = settings or _DEFAULT_SETTINGS
    effect = effect_name(field_of(decision, "effect", default="allow"))
    reason = str(field_of(decision, "reason", default=""))
    rule_ids = rule_ids_of(decision)
    flags = [str(f) for f in field_of(decision, "flags", default=())]
    headers = rate_limit_headers(decision, effect, _tightest_limit(decision))
    meta = _metadata({"effect": effect, "rule_ids": rule_ids, "flags": flags, "reason": reason,
                      "request_id": field_of(decision, "request_id"),
                      "policy_version": field_of(decision, "policy_version", "version")})
    if effect in ("deny", "throttle"):
        status = int(field_of(decision, "http_status", "status", default=DEFAULT_HTTP_STATUS[effect]))
        resp = _denied(
            status, RPC_PERMISSION_DENIED if effect == "deny" else RPC_RESOURCE_EXHAUSTED, reason,
            "permission_denied" if effect == "deny" else "rate_limit_exceeded",
            rule_ids[0] if rule_ids else None, headers,
        )
    else:
        ok = authz.OkHttpResponse()
        if flags:
            ok.headers.extend(_header_options({s.flags_header: ",".join(flags)}, overwrite=True))
        else:
            ok.headers_to_remove.append(s.flags_header)  # never pass on a caller's own copy
        if s.rate_limit_headers_on_allow and headers:
            ok.response_headers_to_add.extend(_header_options(headers, overwrite=True))
        resp = authz.CheckResponse(status=status_pb2.Status(code=RPC_OK), ok_response=ok)
    resp.dynamic_metadata.CopyFrom(meta)
    return resp


def deny_for_mapping_error(err: MappingError) -> authz.CheckResponse:
    """401 (or the error's status) with the same JSON error body as policy denials."""
    headers = {"www-authenticate": 'Bearer error="invalid_token"'} if err.http_status == 401 else {}
    return _denied(err.http_status, err.rpc_code, err.reason, "unauthenticated", None, headers)


def build_rate_limit_response(decision: Any, descriptor_count: int) -> rls.RateLimitResponse:
    """ShouldRateLimit answer: OVER_LIMIT for deny and throttle (Envoy answers 429 either way)."""
    effect = effect_name(field_of(decision, "effect", default="allow"))
    code = rls.RateLimitResponse.OVER_LIMIT if effect in ("deny", "throttle") else rls.RateLimitResponse.OK
    resp = rls.RateLimitResponse(overall_code=code)
    lim = _tightest_limit(decision)
    # Every descriptor gets the same status: build it once, copy it per descriptor.
    st = rls.RateLimitResponse.DescriptorStatus(code=code)
    if lim is not None:
        st.current_limit.requests_per_unit = int(float(field_of(lim, "max", default=0.0)))
        st.current_limit.name = str(field_of(lim, "limit_id", "limit", "id", default=""))
        st.limit_remaining = max(0, int(float(field_of(lim, "remaining", default=0.0))))
        st.duration_until_reset.FromNanoseconds(
            int(float(field_of(lim, "reset_seconds", "reset", default=0.0)) * 1e9))
    resp.statuses.extend([st] * descriptor_count)
    headers = rate_limit_headers(decision, effect, lim)
    resp.response_headers_to_add.extend(core.HeaderValue(key=k, value=v) for k, v in headers.items())
    return resp
