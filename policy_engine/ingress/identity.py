"""Who is calling: identity headers set by a trusted authentication filter, or a bearer JWT verified here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from jwt.types import Options

from policy_engine.ingress.answer import Answer, refusal
from policy_engine.ingress.settings import IngressSettings, JwtSettings
from policy_engine.ingress.values import put


class MappingError(Exception):
    """The request cannot be mapped (e.g. a bad token); the gateway refuses it with this reason."""

    def __init__(self, reason: str, http_status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status

    def answer(self) -> Answer:
        """The refusal every gateway sends: the JSON error body, and a bearer challenge on 401."""
        headers = {"www-authenticate": 'Bearer error="invalid_token"'} if self.http_status == 401 else {}
        return refusal(self.http_status, "unauthenticated", self.reason, None, headers)


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
        opts: Options = {"require": list(s.require_claims)}
        if s.audience is None:
            opts["verify_aud"] = False
        return jwt.decode(
            token,
            key=key,
            algorithms=s.algorithms,
            audience=s.audience,
            issuer=s.issuer,
            leeway=s.leeway_seconds,
            options=opts,
        )
    except jwt.ExpiredSignatureError:
        raise MappingError("token expired") from None
    except jwt.InvalidTokenError as e:
        raise MappingError(f"invalid token: {e}") from None


def identity_from_claims(
    ctx: dict[str, Any], claims: Mapping[str, Any], s: JwtSettings, now: float, warnings: list[str]
) -> None:
    for path, claim in s.claims.items():
        if claims.get(claim) is not None:
            put(ctx, path, claims[claim], warnings, f"jwt claim {claim}")
    if s.age_days_claim and claims.get(s.age_days_claim) is not None:
        put(ctx, "account.age_days", claims[s.age_days_claim], warnings, f"jwt claim {s.age_days_claim}")
    elif s.created_claim and claims.get(s.created_claim) is not None:
        try:
            age = max(0.0, (now - float(claims[s.created_claim])) / 86400.0)
        except (TypeError, ValueError):
            warnings.append(f"jwt claim {s.created_claim}: ignored {claims[s.created_claim]!r}: not an epoch")
        else:
            put(ctx, "account.age_days", age, warnings, f"jwt claim {s.created_claim}")


class IdentityReader:
    """Fills the identity sections of a request context, from headers or a verified JWT."""

    def __init__(self, settings: IngressSettings) -> None:
        self.settings = settings
        self._headers = settings.headers.identity()
        jwt_settings = settings.jwt
        self._jwks = JwksCache(jwt_settings.jwks_file) if jwt_settings and settings.identity == "jwt" else None

    def read(
        self, ctx: dict[str, Any], headers: Mapping[str, str], now: float, warnings: list[str]
    ) -> dict[str, Any] | None:
        """The verified token's claims (None without one). Raises MappingError for a refused
        (or, when required, missing) token."""
        s = self.settings
        if s.identity == "headers":
            for path, name in self._headers.items():
                if name in headers:
                    put(ctx, path, headers[name], warnings, f"header {name}")
            return None
        assert s.jwt is not None and self._jwks is not None
        raw = headers.get(s.jwt.header, "")
        scheme, _, token = raw.strip().partition(" ")
        if not raw:
            if s.jwt.required:
                raise MappingError(f"missing bearer token in {s.jwt.header}")
            return None
        if scheme.lower() != "bearer" or not token.strip():
            raise MappingError(f"{s.jwt.header}: expected 'Bearer <token>'")
        claims = verify_jwt(token.strip(), s.jwt, self._jwks)
        identity_from_claims(ctx, claims, s.jwt, now, warnings)
        return claims
