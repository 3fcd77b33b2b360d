"""The request context schema, as the checker sees it.

One schema everywhere (DESIGN.md): `policyctl eval`, `replay`, `test` cases and
the gRPC API all carry these fields. `policy_engine.context` holds the pydantic
models that validate real requests; a test keeps the two in step.
"""

from __future__ import annotations

from dsl.types import BOOL, FLOAT, INT, STRING, VERIFICATION, IP, SetType, Type

VERIFICATION_LEVELS: tuple[str, ...] = ("none", "email", "phone", "kyc")

# section -> field -> type. Every field may be null (missing optional fields are null).
SCHEMA: dict[str, dict[str, Type]] = {
    "request": {
        "id": STRING,
        "ts": FLOAT,
        "model": STRING,
        "prompt": STRING,
        "max_tokens": INT,
        "prompt_tokens": INT,
    },
    "account": {
        "id": STRING,
        "org": STRING,
        "age_days": FLOAT,
        "verification": VERIFICATION,
        "tier": STRING,
        "payment_fingerprint": STRING,
        "labels": SetType(STRING),
    },
    "api_key": {
        "id": STRING,
        "scopes": SetType(STRING),
    },
    "client": {
        "ip": IP,
        "country": STRING,
        "asn": INT,
        "user_agent": STRING,
    },
    "usage": {
        "prompt_tokens": INT,
        "completion_tokens": INT,
    },
}

# `measures.NAME` reads a measure (dsl.checker); the name is reserved beside the sections.
MEASURES = "measures"

# Fields the engine derives when the gateway leaves them out.
DERIVED: dict[str, str] = {
    "client.country": "from client.ip, with the embedded geo data",
    "client.asn": "from client.ip, with the embedded geo data",
}


def field_type(section: str, name: str) -> Type | None:
    return SCHEMA.get(section, {}).get(name)


def all_paths() -> list[str]:
    return [f"{s}.{f}" for s, fields in SCHEMA.items() for f in fields]


def flat_name(section: str, name: str) -> str:
    """The attribute name of a field on the evaluator's flat context object."""
    return f"{section}_{name}"
