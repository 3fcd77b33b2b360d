"""The decision model: what the engine answers for one request."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from dsl import checked
from policy_engine.state.base import Hit, HitResult


class Effect(enum.IntEnum):
    """Ordered by strength: deny beats throttle beats flag beats allow."""

    ALLOW = 0
    FLAG = 1
    THROTTLE = 2
    DENY = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Effect:
        return cls[text.upper()]


# The HTTP status of an effect whose rule or limit names none: dsl/checked.py's table, plus allow.
DEFAULT_STATUS = {Effect.ALLOW: 200, **{Effect.parse(e): status for e, status in checked.DEFAULT_STATUS.items()}}


@dataclass(slots=True)
class LimitState:
    """One limit consulted for this request."""

    limit: str
    key: str
    kind: str
    used: float
    max: float
    remaining: float
    reset: float  # seconds
    over: bool
    committed: bool
    shadow: bool = False
    error: str | None = None
    window: float = 0.0  # seconds (the IETF RateLimit-Policy's w)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "limit": self.limit,
            "key": self.key,
            "kind": self.kind,
            "used": shown_number(self.used),
            "max": shown_number(self.max),
            "remaining": shown_number(self.remaining),
            "reset": round(self.reset, 3),
            "over": self.over,
            "committed": self.committed,
        }
        if self.shadow:
            d["shadow"] = True
        if self.error:
            d["error"] = self.error
        return d


@dataclass(slots=True)
class MeasureState:
    """One measure this request touched: charged (it applied) or only read."""

    measure: str
    key: str
    value: float | None  # including this request when charged; None when the store failed
    charged: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "measure": self.measure,
            "key": self.key,
            "value": None if self.value is None else shown_number(self.value),
            "charged": self.charged,
        }
        if self.error:
            d["error"] = self.error
        return d


class _Named(Protocol):
    @property
    def id(self) -> str: ...


# (measure id, key, value, charged, error): one measure touched, as MeasureState holds it.
MeasureRow = tuple[str, str, "float | None", bool, "str | None"]


class MeasureStates(Sequence[MeasureState]):
    """The measures one request touched, kept as the store answered them (a list
    reference per store call) and made MeasureStates only when read: most answers
    (Envoy's) never read them, while a shipped policy touches ~25 measures a request.
    Explain, the decision log, replay, eval and our Check's answer read them, and get
    what an eager list would have held, in the same order."""

    __slots__ = ("_measures", "_values", "_parts", "_built")

    def __init__(self, measures: Sequence[_Named], values: list[float | None]) -> None:
        self._measures = measures  # by index: the policy's measures (their ids)
        self._values = values  # by index: each measure's value (the request context's)
        self._parts: list[tuple[list[int], list[Hit], Sequence[HitResult]]] = []
        self._built: list[MeasureState] | None = None

    def add(self, indices: list[int], hits: list[Hit], results: Sequence[HitResult]) -> None:
        """One store call's measures: their indices, hits and the store's results."""
        self._parts.append((indices, hits, results))
        self._built = None

    def rows(self) -> list[MeasureRow]:
        """Each measure touched as a tuple, without building MeasureStates (for replay)."""
        measures, values = self._measures, self._values
        return [
            (measures[j].id, hit.key, values[j], res.committed, res.error)
            for indices, hits, results in self._parts
            for j, hit, res in zip(indices, hits, results)
        ]

    def errors(self) -> tuple[int, str | None]:
        """How many measures the store failed for, and the last failure's message."""
        count, last = 0, None
        for _, _, results in self._parts:
            for res in results:
                if res.error is not None:
                    count += 1
                    last = res.error
        return count, last

    def _states(self) -> list[MeasureState]:
        built = self._built
        if built is None:
            built = self._built = [MeasureState(*row) for row in self.rows()]
        return built

    def __len__(self) -> int:
        return sum(min(len(i), len(h), len(r)) for i, h, r in self._parts)

    def __bool__(self) -> bool:  # the engine adds only store calls with hits
        return bool(self._parts)

    @overload
    def __getitem__(self, i: int) -> MeasureState: ...
    @overload
    def __getitem__(self, i: slice) -> list[MeasureState]: ...
    def __getitem__(self, i: int | slice) -> MeasureState | list[MeasureState]:
        return self._states()[i]

    def __iter__(self) -> Iterator[MeasureState]:
        return iter(self._states())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._states() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list: unhashable like one

    def __repr__(self) -> str:
        return repr(self._states())


def measure_rows(measures: Sequence[MeasureState]) -> list[MeasureRow]:
    """(measure, key, value, charged, error) per measure touched, built or not."""
    if isinstance(measures, MeasureStates):
        return measures.rows()
    return [(m.measure, m.key, m.value, m.charged, m.error) for m in measures]


def measure_errors(measures: Sequence[MeasureState]) -> tuple[int, str | None]:
    """How many measures the store failed for, and the last failure's message."""
    if isinstance(measures, MeasureStates):
        return measures.errors()
    failed = [m.error for m in measures if m.error is not None]
    return len(failed), failed[-1] if failed else None


@dataclass(frozen=True, slots=True)
class ShadowMatch:
    """A shadow rule or limit that matched: what it would have done, had it been enforced."""

    rule: str
    effect: Effect
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "effect": self.effect.label, "reason": self.reason}


def shown_number(v: float) -> float | int:
    """A count or an amount as JSON shows it: whole numbers as ints, others to the
    micro-unit (money budgets are kept in micro-units: shown exactly)."""
    return v if type(v) is int else int(v) if float(v).is_integer() else round(v, 6)


@dataclass(slots=True)
class Decision:
    effect: Effect
    status: int
    reason: str | None = None
    rules: list[str] = field(default_factory=list)  # enforced rules and limits that matched
    shadow: list[ShadowMatch] = field(default_factory=list)  # shadow rules and limits that would have matched
    flags: list[str] = field(default_factory=list)  # ids of flag rules that matched
    headers: dict[str, str] = field(default_factory=dict)
    limits: list[LimitState] = field(default_factory=list)
    measures: Sequence[MeasureState] = ()  # set only for a policy with measures (MeasureStates: built when read)
    retry_after: float | None = None
    policy_version: str = ""
    request_id: str | None = None
    trace: list[dict[str, Any]] | None = None
    # The limits the caller's rate-limit headers describe (the engine picks them by one rule,
    # see engine._apply_limits): of any kind, of `count` limits (requests), of `sum` limits (tokens).
    rate_limit: LimitState | None = None
    requests_limit: LimitState | None = None
    tokens_limit: LimitState | None = None
    # The policy's exemptions this request matched: no limit was consulted, their rules were skipped.
    exempt: Sequence[str] = ()
    # Why a declared attribute the request sent was left out (null): undeclared, or not of its type.
    notes: Sequence[str] = ()

    @property
    def shadow_rules(self) -> list[str]:
        """The ids of the shadow matches."""
        return [m.rule for m in self.shadow]

    @property
    def allowed(self) -> bool:
        return self.effect <= Effect.FLAG

    def head(self) -> dict[str, Any]:
        """What every rendering of a decision starts with (the JSON answer, the decision log)."""
        d: dict[str, Any] = {
            "request_id": self.request_id,
            "effect": self.effect.label,
            "status": self.status,
            "reason": self.reason,
            "rules": self.rules,
        }
        if self.shadow_rules:
            d["shadow_rules"] = self.shadow_rules
        if self.flags:
            d["flags"] = self.flags
        if self.exempt:
            d["exempt"] = list(self.exempt)
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    def to_dict(self) -> dict[str, Any]:
        d = self.head()
        if self.headers:
            d["headers"] = self.headers
        if self.retry_after is not None:
            d["retry_after"] = round(self.retry_after, 3)
        if self.limits:
            d["limits"] = [s.to_dict() for s in self.limits]
        if self.measures:
            d["measures"] = [m.to_dict() for m in self.measures]
        d["policy_version"] = self.policy_version
        if self.trace is not None:
            d["trace"] = self.trace
        return d
