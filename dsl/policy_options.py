"""Options a policy sets in its header: which rate-limit headers callers get, and how much they say.

    policy "extraction-defence" {
      rate_limit_headers "x-ratelimit openai ietf"
      rate_limit_disclosure "full"
      rate_limit_disclosure_flagged "limits"
    }

Other header keys stay free-form metadata (`owner`, `description`, ...); a key
that looks like a misspelt option is a warning (W0311), a value that is not one
of an option's values an error (E0213).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from dsl import ast as A
from dsl.diagnostics import Diagnostic, Severity

# Header families: x-ratelimit-limit/-remaining/-reset (the limit the one rule picks),
# OpenAI's per-requests and per-tokens x-ratelimit-*-requests / -tokens, and the
# IETF draft's RateLimit-Policy / RateLimit structured fields.
FAMILIES = ("x-ratelimit", "openai", "ietf")
# What the headers say: everything, the limits only (no remaining count, no reset), nothing.
# A throttled caller still gets retry-after: without it a client retries blindly.
DISCLOSURES = ("full", "limits", "none")


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    families: frozenset[str] = frozenset({"x-ratelimit"})
    disclosure: str = "full"
    # The disclosure for a request a flag rule matched (an account under suspicion); None: the same.
    flagged: str | None = None

    def level(self, flagged: bool) -> str:
        return self.flagged if flagged and self.flagged is not None else self.disclosure


DEFAULT = RateLimitHeaders()
OPTIONS = ("rate_limit_headers", "rate_limit_disclosure", "rate_limit_disclosure_flagged")


def read_options(header: A.PolicyHeader | None) -> tuple[RateLimitHeaders, list[Diagnostic]]:
    """The options of a policy header, and a diagnostic for each value or key that is wrong."""
    if header is None:
        return DEFAULT, []
    diags: list[Diagnostic] = []
    families, disclosure, flagged = DEFAULT.families, DEFAULT.disclosure, DEFAULT.flagged
    for item in header.meta:
        if item.key == "rate_limit_headers":
            words = item.value.replace(",", " ").split()
            bad = [w for w in words if w not in FAMILIES]
            if bad or not words:
                diags.append(
                    _invalid(
                        item,
                        f"`{bad[0] if bad else item.value}` is not a rate-limit header family",
                        FAMILIES,
                        bad[0] if bad else "",
                    )
                )
            else:
                families = frozenset(words)
        elif item.key in ("rate_limit_disclosure", "rate_limit_disclosure_flagged"):
            if item.value not in DISCLOSURES:
                diags.append(_invalid(item, f"`{item.value}` is not a disclosure", DISCLOSURES, item.value))
            elif item.key == "rate_limit_disclosure":
                disclosure = item.value
            else:
                flagged = item.value
        elif item.key.startswith("rate") or difflib.get_close_matches(item.key, OPTIONS, 1, 0.8):
            close = difflib.get_close_matches(item.key, OPTIONS, 1, 0.6)
            diags.append(
                Diagnostic(
                    "W0311",
                    f"`{item.key}` is not a policy option; kept as metadata",
                    item.span,
                    Severity.WARNING,
                    hint=f"did you mean `{close[0]}`?" if close else f"the options are {', '.join(OPTIONS)}",
                )
            )
    return RateLimitHeaders(families, disclosure, flagged), diags


def _invalid(item: A.MetaItem, message: str, allowed: tuple[str, ...], word: str) -> Diagnostic:
    close = difflib.get_close_matches(word, allowed, 1, 0.6) if word else []
    hint = f"did you mean `{close[0]}`?" if close else f"one of: {', '.join(allowed)}"
    return Diagnostic("E0213", f"{item.key}: {message}", item.span, hint=hint)
