"""How requests are read into a request context, whatever the gateway (pydantic models, all optional).

The default header and claim names come from the field table (`dsl.schema`):
a field with a `header` gets a key in `HeaderNames`, one with a `claim` a
default entry in `JwtSettings.claims`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from dsl.schema import BY_SECTION, FIELDS
from policy_engine.ingress.values import check_paths


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


# header setting key -> field path, for every field a request header may carry.
HEADER_KEYS: dict[str, str] = {key: f.path for f in FIELDS if (key := f.header_setting) is not None}


class _HeaderNamesBase(_Settings):
    """Request headers (lower-case) that carry identity and hints; None: not read from a header."""

    def by_path(self) -> dict[str, str | None]:
        """Field path -> the header name configured for it."""
        return {path: getattr(self, key) for key, path in HEADER_KEYS.items()}

    def identity(self) -> dict[str, str]:
        """Field path -> header, for the identity fields (trusted only from an authentication filter)."""
        return {
            path: name
            for path, name in self.by_path().items()
            if name is not None and BY_SECTION[path.split(".", 1)[0]].identity
        }


def _header_names_model() -> type[_HeaderNamesBase]:
    fields: dict[str, Any] = {key: (str | None, f.header) for f in FIELDS if (key := f.header_setting) is not None}
    return create_model("HeaderNames", __base__=_HeaderNamesBase, **fields)


if TYPE_CHECKING:
    HeaderNames = _HeaderNamesBase
else:
    HeaderNames = _header_names_model()


def _default_claims() -> dict[str, str]:
    return {f.path: f.claim for f in FIELDS if f.claim is not None}


class JwtSettings(_Settings):
    jwks_file: Path
    header: str = "authorization"  # "Bearer <token>"
    issuer: str | None = None
    audience: str | list[str] | None = None
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
    )
    leeway_seconds: float = Field(default=30.0, ge=0)
    require_claims: list[str] = Field(default_factory=lambda: ["exp", "sub"])
    # A request without a token is refused (401) unless this is False.
    required: bool = True
    # context field -> claim name
    claims: dict[str, str] = Field(default_factory=_default_claims)
    # account.age_days: from this claim directly, else from an account-creation epoch claim.
    age_days_claim: str | None = "age_days"
    created_claim: str | None = "acct_created"

    @model_validator(mode="after")
    def _known_fields(self) -> JwtSettings:
        check_paths({claim: path for path, claim in self.claims.items()}, "jwt.claims")
        return self


class IngressSettings(_Settings):
    identity: Literal["headers", "jwt"] = "headers"
    headers: HeaderNames = HeaderNames()
    jwt: JwtSettings | None = None
    # Client IP: x-envoy-external-address (set by Envoy with use_remote_address), then the
    # x-forwarded-for entry `xff_num_trusted_hops` from the right (None: ignore XFF), then
    # the TCP peer.
    trust_envoy_external_address: bool = True
    xff_num_trusted_hops: int | None = Field(default=None, ge=0)
    parse_body: bool = True
    max_body_bytes: int = Field(default=4 << 20, gt=0)  # parse at most this much of a body
    chars_per_token: float = Field(default=4.0, gt=0)
    # Answer side.
    flags_header: str = "x-policy-flags"  # sent upstream on allowed requests
    rate_limit_headers_on_allow: bool = True  # the decision's headers back to the caller when admitted

    @model_validator(mode="after")
    def _identity_source(self) -> IngressSettings:
        if self.identity == "jwt" and self.jwt is None:
            raise ValueError("identity 'jwt' needs a jwt section (jwks_file at least)")
        return self
