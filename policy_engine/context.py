"""The request context: pydantic models at the boundary, a flat object inside.

`RequestContext` validates what users and gateways send (unknown fields are
rejected, missing optional ones are null). `Context` is what compiled policies
read: one slot per schema field (`account_age_days`, ...), verification as its
rank, label sets as frozensets, and a per-request cache for signals, so that
generated code reads attributes instead of walking models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from typing_extensions import TypedDict

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config

from dsl.schema import SCHEMA, VERIFICATION_LEVELS, flat_name

Verification = Literal["none", "email", "phone", "kyc"]
VERIFICATION_RANK: dict[str, int] = {v: i for i, v in enumerate(VERIFICATION_LEVELS)}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class RequestInfo(_Section):
    id: str | None = None
    ts: float | None = None
    model: str | None = None
    prompt: str | None = None
    max_tokens: int | None = Field(default=None, ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0)


class AccountInfo(_Section):
    id: str | None = None
    org: str | None = None
    age_days: float | None = Field(default=None, ge=0)
    verification: Verification | None = None
    tier: str | None = None
    payment_fingerprint: str | None = None
    labels: list[str] | None = None


class ApiKeyInfo(_Section):
    id: str | None = None
    scopes: list[str] | None = None


class ClientInfo(_Section):
    ip: str | None = None
    country: str | None = None
    asn: int | None = Field(default=None, ge=0)
    user_agent: str | None = None


class UsageInfo(_Section):
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)


class RequestContext(_Section):
    request: RequestInfo = RequestInfo()
    account: AccountInfo = AccountInfo()
    api_key: ApiKeyInfo = ApiKeyInfo()
    client: ClientInfo = ClientInfo()
    usage: UsageInfo | None = None


def _typed_dict_of(model: type[BaseModel]) -> Any:
    """The same schema as `model`, as a TypedDict: pydantic validates JSON into
    plain dicts about three times faster than into models, which matters on
    the replay and server paths. Derived, not written twice."""
    fields: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        ann = f.annotation
        sub = next((a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sub = ann
        if sub is not None:
            fields[name] = Optional[_typed_dict_of(sub)]
        else:
            fields[name] = Annotated[ann, *f.metadata] if f.metadata else ann
    td = TypedDict(model.__name__ + "Dict", fields, total=False)  # type: ignore[operator]
    return with_config(ConfigDict(extra="forbid"))(td)


_FAST = TypeAdapter(_typed_dict_of(RequestContext))

FIELDS: tuple[str, ...] = tuple(flat_name(s, f) for s, fields in SCHEMA.items() for f in fields)


_EMPTY: dict[str, Any] = {}


class Context:
    """The flat, per-request view that compiled policies read."""

    # `measures`: the policy's measure values, by measure index. The engine sets it
    # (only for a policy that has measures) before anything that reads one runs.
    __slots__ = FIELDS + ("cache", "measures")

    def __init__(self, **values: Any) -> None:
        for name in FIELDS:
            setattr(self, name, values.get(name))
        self.cache: dict[Any, Any] = {}
        self.measures: list[float | None] = []

    @classmethod
    def from_model(cls, m: RequestContext) -> "Context":
        c = cls.__new__(cls)
        c.cache = {}
        r, a, k, cl = m.request, m.account, m.api_key, m.client
        c.request_id, c.request_ts, c.request_model = r.id, r.ts, r.model
        c.request_prompt, c.request_max_tokens, c.request_prompt_tokens = r.prompt, r.max_tokens, r.prompt_tokens
        c.account_id, c.account_org, c.account_age_days = a.id, a.org, a.age_days
        c.account_verification = None if a.verification is None else VERIFICATION_RANK[a.verification]
        c.account_tier, c.account_payment_fingerprint = a.tier, a.payment_fingerprint
        c.account_labels = None if a.labels is None else frozenset(a.labels)
        c.api_key_id = k.id
        c.api_key_scopes = None if k.scopes is None else frozenset(k.scopes)
        c.client_ip, c.client_country, c.client_asn, c.client_user_agent = cl.ip, cl.country, cl.asn, cl.user_agent
        u = m.usage
        c.usage_prompt_tokens = None if u is None else u.prompt_tokens
        c.usage_completion_tokens = None if u is None else u.completion_tokens
        return c

    @classmethod
    def from_json(cls, text: str | bytes) -> "Context":
        """Validate and flatten one JSON request context. Raises pydantic's
        ValidationError (same messages and paths as RequestContext)."""
        return cls.from_valid_dict(_FAST.validate_json(text))

    @classmethod
    def from_valid_dict(cls, d: dict[str, Any]) -> "Context":
        c = cls.__new__(cls)
        c.cache = {}
        r = d.get("request") or _EMPTY
        a = d.get("account") or _EMPTY
        k = d.get("api_key") or _EMPTY
        cl = d.get("client") or _EMPTY
        u = d.get("usage") or _EMPTY
        c.request_id, c.request_ts, c.request_model = r.get("id"), r.get("ts"), r.get("model")
        c.request_prompt, c.request_max_tokens = r.get("prompt"), r.get("max_tokens")
        c.request_prompt_tokens = r.get("prompt_tokens")
        c.account_id, c.account_org, c.account_age_days = a.get("id"), a.get("org"), a.get("age_days")
        v = a.get("verification")
        c.account_verification = None if v is None else VERIFICATION_RANK[v]
        c.account_tier, c.account_payment_fingerprint = a.get("tier"), a.get("payment_fingerprint")
        labels = a.get("labels")
        c.account_labels = None if labels is None else frozenset(labels)
        c.api_key_id = k.get("id")
        scopes = k.get("scopes")
        c.api_key_scopes = None if scopes is None else frozenset(scopes)
        c.client_ip, c.client_country, c.client_asn = cl.get("ip"), cl.get("country"), cl.get("asn")
        c.client_user_agent = cl.get("user_agent")
        c.usage_prompt_tokens, c.usage_completion_tokens = u.get("prompt_tokens"), u.get("completion_tokens")
        return c

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Context":
        return cls.from_model(RequestContext.model_validate(data))


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem, each naming the JSON path at fault."""
    lines = []
    for e in err.errors():
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{path}: {msg}")
    return "\n".join(lines)
