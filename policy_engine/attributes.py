"""A policy's declared attributes on the request path.

The declarations (`attribute account.risk_score: float { header "x-risk-score" }`)
are rows of the field table (`dsl.schema.Field`, `declared=True`). Every ingress
collects the raw values its sources name into the request context's
`attributes` map, keyed by each attribute's API key (its path unless the policy
renames it with `api "..."`): HTTP headers and JWT claims (`RequestMapper`),
Envoy metadata and context extensions (`server/envoy_mapping.py`), ASGI scope keys
(`gateway/asgi.py`), our API's map as sent. The engine then types that map once
per request by the declarations of the policy that decides (`Attributes.type`):
a value that does not fit its type, or a key the policy does not declare, is
left out (the attribute reads as null) and the decision carries a note saying
why. A request without attributes costs nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dsl.schema import BY_SECTION, Field
from policy_engine.context import Context
from policy_engine.ingress.values import coercer

_MISSING = object()


class Attributes:
    """The declared attributes of one policy, with each one's reader chosen once."""

    __slots__ = ("fields", "_by_key", "_headers", "_all_headers", "_claims", "_metadata", "_extensions", "_asgi")

    def __init__(self, fields: tuple[Field, ...] = ()) -> None:
        self.fields = fields
        self._by_key: dict[str, tuple[str, Callable[[Any], Any]]] = {_key(f): (f.path, coercer(f)) for f in fields}
        # (source name, API key, whether it is an identity field)
        self._headers = [(f.header, _key(f), _identity(f)) for f in fields if f.header is not None]
        self._all_headers = [_key(f) for f in fields if f.all_headers]
        self._claims = [(f.claim, _key(f)) for f in fields if f.claim is not None]
        self._metadata = [(f.metadata, _key(f)) for f in fields if f.metadata is not None]
        self._extensions = [(f.context_extension, _key(f)) for f in fields if f.context_extension is not None]
        self._asgi = [(tuple(f.asgi.split(".")), _key(f)) for f in fields if f.asgi is not None]

    def __bool__(self) -> bool:
        return bool(self.fields)

    def type(self, ctx: Context) -> list[str]:
        """Set `ctx.attrs` (path -> typed value) from `ctx.attributes` as sent; a note per
        value left out, and why, in the order of their keys."""
        typed: dict[str, Any] = {}
        notes: list[str] = []
        by_key = self._by_key
        sent = ctx.attributes
        for key in sorted(sent):  # a protobuf map has no order: notes come in the keys' order
            raw = sent[key]
            spec = by_key.get(key)
            if spec is None:
                notes.append(f"attribute {key!r} is not declared by the policy: ignored")
                continue
            if raw is None:
                continue
            path, read = spec
            try:
                typed[path] = read(raw)
            except (ValueError, TypeError, OverflowError) as e:
                notes.append(f"attribute {path}: ignored {_show(raw)}: {e}")
        ctx.attrs = typed
        return notes

    # --- what each ingress reads: raw values, by API key --------------------------------
    def from_http(
        self, out: dict[str, Any], headers: Mapping[str, str], claims: Mapping[str, Any] | None, trusted_headers: bool
    ) -> None:
        """Header and claim sources. A header of an identity section (account, api_key) is
        read only when identity comes from a trusted filter's headers, as the built-in ones."""
        for name, key, identity in self._headers:
            value = headers.get(name)
            if value is not None and (trusted_headers or not identity):
                out[key] = value
        for key in self._all_headers:
            out[key] = dict(headers)
        if claims:
            for claim, key in self._claims:
                value = claims.get(claim)
                if value is not None:
                    out[key] = value

    def from_envoy(
        self, out: dict[str, Any], metadata: Callable[[str, str], Any], extensions: Mapping[str, str]
    ) -> None:
        """Envoy's dynamic metadata (`metadata(namespace, key)`, None when absent) and context extensions."""
        for (namespace, name), key in self._metadata:
            value = metadata(namespace, name)
            if value is not None:
                out[key] = value
        for name, key in self._extensions:
            if name in extensions:
                out[key] = extensions[name]

    def from_scope(self, out: dict[str, Any], scope: Mapping[str, Any]) -> None:
        """ASGI scope keys, dotted through dicts (`state.risk_score`)."""
        for parts, key in self._asgi:
            value: Any = scope
            for part in parts:
                value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
                if value is _MISSING:
                    break
            if value is not _MISSING and value is not None:
                out[key] = value


NO_ATTRIBUTES = Attributes()


def _key(f: Field) -> str:
    return f.api or f.path


def _identity(f: Field) -> bool:
    return BY_SECTION[f.section].identity


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."
