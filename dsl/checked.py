"""The typed middle stage: what the checker hands to the lint pass and the compiler.

The parser's blocks are lists of clauses with string kinds; the checker lowers
each well-formed one to a `CheckedRule`, `CheckedLimit` or `CheckedMeasure` with
every choice resolved (effect, status, retry, record, block, on_error, window in
seconds) and every default applied here, in one place. Expressions stay typed
AST (`CheckedPolicy.type_of`); `decl` keeps the source block for tools that point
at clauses (lint, coverage, the language server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from dsl import ast as A
from dsl import data as D
from dsl.schema import SCHEMA, Field
from dsl.types import ANY, Type

EffectName = Literal["deny", "throttle", "flag"]
MeasureKind = Literal["count", "sum", "distinct"]
RecordMode = Literal["admitted", "attempts"]
FailMode = Literal["open", "closed"]
BlockMode = Literal["new", "key"]
CalendarUnit = Literal["day", "week", "month"]

EFFECTS: tuple[EffectName, ...] = get_args(EffectName)
MEASURE_KINDS: tuple[MeasureKind, ...] = get_args(MeasureKind)
RECORD_MODES: tuple[RecordMode, ...] = get_args(RecordMode)
FAIL_MODES: tuple[FailMode, ...] = get_args(FailMode)
BLOCK_MODES: tuple[BlockMode, ...] = get_args(BlockMode)
CALENDAR_UNITS: tuple[CalendarUnit, ...] = get_args(CalendarUnit)

# --- defaults: what a block means when it leaves a clause out --------------------------
DEFAULT_STATUS: dict[str, int] = {"deny": 403, "throttle": 429, "flag": 200}  # by effect name
DEFAULT_LIMIT_EFFECT: EffectName = "throttle"  # a limit without deny/throttle/flag throttles
DEFAULT_RETRY_AFTER = 60.0  # seconds, for a throttle rule without retry_after
DEFAULT_RECORD: RecordMode = "admitted"  # budgets count what the policy admits
DEFAULT_ON_ERROR: FailMode = "open"  # a store failure does not refuse the request
DEFAULT_BLOCK: BlockMode = "new"  # distinct: refuse only values beyond the max
DEFAULT_TIME_ZONE = "UTC"  # a calendar window without `in "..."`
# A calendar period's longest length in seconds: what a calendar window stands for where a
# length is needed (receipts are kept at most two of them; traces show it).
CALENDAR_SECONDS: dict[CalendarUnit, float] = {"day": 90_000.0, "week": 608_400.0, "month": 2_682_000.0}


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """`window calendar month in "Europe/Paris"`: the period resets at local midnight
    (of the day, of Monday, of the 1st) in `zone`, an IANA time zone name."""

    unit: CalendarUnit
    zone: str

    def __str__(self) -> str:
        return f'calendar {self.unit} in "{self.zone}"'


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: A.Expr


@dataclass(frozen=True, slots=True)
class CheckedRule:
    name: str
    span: A.Span  # the rule's name
    decl: A.Rule
    effect: EffectName
    condition: A.Expr
    unless: tuple[A.Expr, ...]
    reason: str  # the rule's name when it gives none (an error the checker reports)
    status: int
    retry_after: float | None  # seconds; throttle rules only
    shadow: bool
    headers: tuple[Header, ...]


@dataclass(frozen=True, slots=True)
class Measuring:
    """What a limit and a measure share: what is measured, per which key, over which window."""

    name: str
    span: A.Span  # the block's name
    kind: MeasureKind
    key: tuple[A.Expr, ...]  # joined with "|" into one key
    amount: A.Expr | None  # sum: the cost
    member: A.Expr | None  # distinct: the value counted
    usage: A.Expr | None  # sum: the actual cost, from `usage.*` at report time
    window: float  # seconds; a calendar window's longest period (CALENDAR_SECONDS)
    when: tuple[A.Expr, ...]
    unless: tuple[A.Expr, ...]
    calendar: CalendarWindow | None  # None: a sliding window of `window` seconds


@dataclass(frozen=True, slots=True)
class CheckedLimit(Measuring):
    decl: A.Limit
    maximum: A.Expr
    effect: EffectName
    reason: str
    status: int
    record: RecordMode
    on_error: FailMode
    block: BlockMode
    shadow: bool
    headers: tuple[Header, ...]

    @property
    def enforce(self) -> bool:
        """Whether exceeding this limit can refuse the request."""
        return not self.shadow and self.effect != "flag"


@dataclass(frozen=True, slots=True)
class CheckedMeasure(Measuring):
    decl: A.Measure
    level: int  # 0 reads no measure; k reads measures of lower levels


@dataclass(frozen=True, slots=True)
class CheckedExempt:
    """`exempt NAME { when C; unless U; rules r1, r2 }`: a request it matches skips every
    limit and the rules named (measures still count it: they are evidence)."""

    name: str
    span: A.Span  # the exemption's name
    decl: A.Exempt
    when: tuple[A.Expr, ...]
    unless: tuple[A.Expr, ...]
    rules: tuple[str, ...]  # the rules it also skips, declared ones only


@dataclass
class CheckedPolicy:
    modules: list[A.Module]
    header: A.PolicyHeader | None
    lets: dict[str, A.Let]
    data: dict[str, D.DataValue]
    # The blocks as declared (duplicates left out), well-formed or not: for tools on the source.
    rule_decls: list[A.Rule] = field(default_factory=list)
    limit_decls: list[A.Limit] = field(default_factory=list)
    measure_decls: list[A.Measure] = field(default_factory=list)
    exempt_decls: list[A.Exempt] = field(default_factory=list)
    attribute_decls: list[A.Attribute] = field(default_factory=list)
    # The declared attributes, well-formed ones, as rows of the field table; and the request
    # schema with them added (section -> field -> type), which expressions are typed against.
    attributes: tuple[Field, ...] = ()
    schema: dict[str, dict[str, Type]] = field(default_factory=lambda: SCHEMA)
    # The lowered blocks, in the same order: complete when the policy has no errors.
    rules: list[CheckedRule] = field(default_factory=list)
    limits: list[CheckedLimit] = field(default_factory=list)
    measures: list[CheckedMeasure] = field(default_factory=list)
    exempts: list[CheckedExempt] = field(default_factory=list)
    types: dict[int, Type] = field(default_factory=dict)  # id(expr) -> type
    rank_literals: set[int] = field(default_factory=set)  # string literals compared with verification
    cidr_literals: set[int] = field(default_factory=set)  # list literals used as CIDR sets
    constant: dict[int, bool] = field(default_factory=dict)  # id(expr) -> reads no request field
    fields_read: set[str] = field(default_factory=set)  # "account.age_days", ...
    # Block name -> measures it reads (lets expanded) -> where first read. A measure's
    # own key is left out: reading a measure there is an error.
    measure_reads: dict[str, dict[str, A.Span]] = field(default_factory=dict)
    # Measure name -> dependency level: 0 reads no measure, k reads measures below k.
    measure_levels: dict[str, int] = field(default_factory=dict)
    # The data list that holds the price table price() and model_group() read (at most one).
    price_table: str | None = None

    def type_of(self, e: A.Expr) -> Type:
        return self.types.get(id(e), ANY)

    def let_expr(self, e: A.Expr) -> A.Expr | None:
        """The expression a name stands for when it names a `let`."""
        if isinstance(e, A.Name) and e.id in self.lets:
            return self.lets[e.id].expr
        return None
