"""The request fields: one table that everything else is derived from.

`FIELDS` is the request context, one schema everywhere (docs/architecture.md,
"The request schema"). The checker reads field types from it; `policy_engine` derives
from it the flat `Context` slots, the pydantic models that validate JSON
requests, the readers that flatten a model, a dict or a protobuf message into
a `Context`, the coercion of header, claim and descriptor values, and the
default header, claim and descriptor names of the gateways.
`scripts/gen_fields` writes the context messages of
`grpc/policyengine/v1/policy.proto` and the field tables of the docs from it.

Adding a field is one `Field(...)` line here, then `scripts/gen_fields` and
`scripts/gen_protos`. Every field may be null: a request that leaves a field
out sends null, and the language is built so that null never fires a rule by
accident.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl.types import BOOL, FLOAT, INT, IP, STRING, VERIFICATION, MapType, SetType, Type

VERIFICATION_LEVELS: tuple[str, ...] = ("none", "email", "phone", "kyc")


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    doc: str
    # The whole section may be null (not only each field): usage is known only after the call.
    nullable: bool = False
    # Who is calling: taken only from an authentication step (a trusted filter's headers, or a JWT).
    identity: bool = False

    @property
    def message(self) -> str:
        """The protobuf message that carries it (`api_key` -> `ApiKey`)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


@dataclass(frozen=True, slots=True)
class Field:
    section: str
    name: str
    type: Type
    number: int  # protobuf field number in the section's message
    doc: str = ""  # the note in the docs' field table and the proto comment
    minimum: float | None = None  # lowest valid value (counts, ages)
    wire: str | None = None  # protobuf scalar type, when not the type's usual one
    header: str | None = None  # default request header that carries it
    setting: str | None = None  # its key in the gateways' `headers` settings (default: name)
    claim: str | None = None  # default JWT claim that carries it
    descriptors: tuple[str, ...] = ()  # default Envoy rate-limit descriptor entry keys
    derived: str | None = None  # signal of client.ip that fills it when the request leaves it null
    # Declared by a policy (`attribute ...`), not built in: read from `Context.attrs` by path,
    # carried in the `attributes` map of our API under `api` (its path unless renamed).
    declared: bool = False
    api: str | None = None
    all_headers: bool = False  # map<string, string>: every request header
    metadata: tuple[str, str] | None = None  # Envoy dynamic metadata: (filter namespace, key)
    context_extension: str | None = None  # Envoy ext_authz context extension
    asgi: str | None = None  # ASGI scope key, dotted through dicts (`state.risk_score`)
    filled: bool = False  # never null: the engine fills it when the request leaves it out

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def flat(self) -> str:
        """Its attribute on the evaluator's flat context object."""
        return f"{self.section}_{self.name}"

    @property
    def note(self) -> str:
        """What the docs say of it beside its type (markdown)."""
        parts = [self.doc] if self.doc else []
        if self.derived is not None:
            parts.append("derived from `client.ip` when absent")
        return "; ".join(parts)

    @property
    def header_setting(self) -> str | None:
        """Its key in the `headers` settings, when a header may carry it."""
        if self.setting is not None:
            return self.setting
        return self.name if self.header is not None else None

    @property
    def proto_type(self) -> str:
        if self.wire is not None:
            return self.wire
        if isinstance(self.type, SetType):
            return "StringList"
        if self.type == INT:
            return "uint64" if self.minimum is not None and self.minimum >= 0 else "int64"
        return "double" if self.type == FLOAT else "string"


SECTIONS: tuple[Section, ...] = (
    Section("request", "the inference call"),
    Section("account", "who is calling", identity=True),
    Section("api_key", "the credential used", identity=True),
    Section("client", "where the call comes from"),
    Section("usage", "what the call really cost; known after it ran", nullable=True),
)

FIELDS: tuple[Field, ...] = (
    Field("request", "id", STRING, 1, header="x-request-id", setting="request_id", descriptors=("request_id",)),
    Field("request", "ts", FLOAT, 2, "seconds since the epoch; the server's clock when absent", filled=True),
    Field("request", "model", STRING, 3, setting="model", descriptors=("model",)),
    Field("request", "prompt", STRING, 4, "the text, or the concatenated messages"),
    Field("request", "max_tokens", INT, 5, minimum=0, descriptors=("max_tokens",)),
    Field("request", "prompt_tokens", INT, 6, minimum=0, header="x-prompt-tokens", descriptors=("prompt_tokens",)),
    Field(
        "account",
        "id",
        STRING,
        1,
        header="x-account-id",
        setting="account_id",
        claim="sub",
        descriptors=("account_id",),
    ),
    Field("account", "org", STRING, 2, header="x-org-id", claim="org", descriptors=("org_id",)),
    Field(
        "account",
        "age_days",
        FLOAT,
        3,
        "days since sign-up",
        minimum=0,
        header="x-account-age-days",
        descriptors=("account_age_days",),
    ),
    Field(
        "account",
        "verification",
        VERIFICATION,
        4,
        "`none < email < phone < kyc`",
        header="x-account-verification",
        claim="verification",
        descriptors=("verification",),
    ),
    Field("account", "tier", STRING, 5, header="x-account-tier", claim="tier", descriptors=("tier",)),
    Field(
        "account",
        "payment_fingerprint",
        STRING,
        6,
        header="x-payment-fingerprint",
        claim="payment_fingerprint",
        descriptors=("payment_fingerprint",),
    ),
    Field("account", "labels", SetType(STRING), 7, header="x-account-labels", claim="labels", descriptors=("labels",)),
    Field(
        "api_key",
        "id",
        STRING,
        1,
        header="x-api-key-id",
        setting="api_key_id",
        claim="api_key_id",
        descriptors=("api_key_id",),
    ),
    Field("api_key", "scopes", SetType(STRING), 2, header="x-api-key-scopes", setting="api_key_scopes", claim="scope"),
    Field("client", "ip", IP, 1, descriptors=("remote_address", "client_ip")),
    Field("client", "country", STRING, 2, "ISO 3166-1 alpha-2", descriptors=("country",), derived="geo_country"),
    Field("client", "asn", INT, 3, minimum=0, wire="uint32", descriptors=("asn",), derived="geo_asn"),
    Field("client", "user_agent", STRING, 4, header="user-agent", descriptors=("user_agent",)),
    Field("usage", "prompt_tokens", INT, 1, "known after the call; read by `usage` clauses", minimum=0),
    Field("usage", "completion_tokens", INT, 2, "known after the call; read by `usage` clauses", minimum=0),
    Field("usage", "cached_input_tokens", INT, 3, "of `prompt_tokens`, those read from the prompt cache", minimum=0),
    Field("usage", "reasoning_tokens", INT, 4, "of `completion_tokens`, those spent reasoning", minimum=0),
    Field("usage", "model", STRING, 5, "the model that served the call, as the gateway reports it"),
)

# `measures.NAME` reads a measure (dsl.checker); the name is reserved beside the sections.
MEASURES = "measures"

BY_PATH: dict[str, Field] = {f.path: f for f in FIELDS}
BY_SECTION: dict[str, Section] = {s.name: s for s in SECTIONS}

# section -> field -> type: the view the checker and the lexer read.
SCHEMA: dict[str, dict[str, Type]] = {s.name: {f.name: f.type for f in FIELDS if f.section == s.name} for s in SECTIONS}


# --- declared attributes (`attribute account.risk_score: float { ... }`) ----------------

# The sections a policy may add fields to: usage is known only after the call, from a report.
ATTRIBUTE_SECTIONS: tuple[str, ...] = ("request", "account", "api_key", "client")
SCALAR_TYPES: dict[str, Type] = {"string": STRING, "int": INT, "float": FLOAT, "bool": BOOL, "ip": IP}
# The words of an attribute's type (`map<string, int>`), for the highlighters.
TYPE_WORDS: tuple[str, ...] = (*SCALAR_TYPES, "set", "map")
ATTRIBUTE_TYPES_DOC = "string, int, float, bool, ip, set<string>, map<string, T> (T one of the scalar types)"


@dataclass(frozen=True, slots=True)
class AttributeSource:
    word: str
    params: tuple[str, ...]  # the names of its string arguments, in order
    doc: str
    scalar_only: bool = False  # a text value: a scalar, or a set (a comma-separated list)


# Where a declared attribute's value comes from, by ingress: each clause of an attribute block.
ATTRIBUTE_SOURCES: dict[str, AttributeSource] = {
    s.word: s
    for s in (
        AttributeSource("header", ("name",), "a request header (HTTP forward-auth, ext_authz, ASGI)", True),
        AttributeSource("headers", (), "every request header, as a map<string, string>"),
        AttributeSource("jwt", ("claim",), "a claim of the verified bearer token (identity jwt)"),
        AttributeSource("envoy_metadata", ("namespace", "key"), "Envoy dynamic metadata (ext_authz metadata_context)"),
        AttributeSource("context_extension", ("key",), "an ext_authz context extension (per-route)", True),
        AttributeSource("api", ("key",), "its key in our API's attributes map (default: the path)"),
        AttributeSource("asgi", ("key",), "an ASGI scope key, dotted through dicts (`state.risk_score`)"),
    )
}


def attribute_type(text: str) -> Type | None:
    """The type an attribute declaration writes (`float`, `set<string>`, `map<string, int>`), or None."""
    if text in SCALAR_TYPES:
        return SCALAR_TYPES[text]
    if text == "set<string>":
        return SetType(STRING)
    if text.startswith("map<string, ") and text.endswith(">"):
        value = SCALAR_TYPES.get(text[len("map<string, ") : -1])
        return MapType(STRING, value) if value is not None else None
    return None


def with_attributes(declared: tuple[Field, ...]) -> dict[str, dict[str, Type]]:
    """`SCHEMA` with a policy's declared fields added: the view its checker reads."""
    if not declared:
        return SCHEMA
    out = {section: dict(fields) for section, fields in SCHEMA.items()}
    for f in declared:
        out[f.section][f.name] = f.type
    return out


def field_type(section: str, name: str) -> Type | None:
    return SCHEMA.get(section, {}).get(name)


def all_paths() -> list[str]:
    return [f.path for f in FIELDS]
