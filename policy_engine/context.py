"""The request context: pydantic models at the boundary, a flat object inside.

`RequestContext` validates what users and gateways send (unknown fields are
rejected, missing optional ones are null). `Context` is what compiled policies
read: one slot per schema field (`account_age_days`, ...), verification as its
rank, label sets as frozensets, and a per-request cache for signals, so that
generated code reads attributes instead of walking models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


FIELDS: tuple[str, ...] = tuple(flat_name(s, f) for s, fields in SCHEMA.items() for f in fields)


class Context:
    """The flat, per-request view that compiled policies read."""

    __slots__ = FIELDS + ("cache",)

    def __init__(self, **values: Any) -> None:
        for name in FIELDS:
            setattr(self, name, values.get(name))
        self.cache: dict[Any, Any] = {}

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
        return cls.from_model(RequestContext.model_validate_json(text))

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
