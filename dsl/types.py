"""The checker's types. Small immutable values compared by equality."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Type:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListType(Type):
    elem: Type

    def __init__(self, elem: Type) -> None:
        object.__setattr__(self, "name", "list")
        object.__setattr__(self, "elem", elem)

    def __str__(self) -> str:
        return f"list<{self.elem}>"


@dataclass(frozen=True, slots=True)
class SetType(Type):
    elem: Type

    def __init__(self, elem: Type) -> None:
        object.__setattr__(self, "name", "set")
        object.__setattr__(self, "elem", elem)

    def __str__(self) -> str:
        return f"set<{self.elem}>"


@dataclass(frozen=True, slots=True)
class MapType(Type):
    key: Type
    value: Type

    def __init__(self, key: Type, value: Type) -> None:
        object.__setattr__(self, "name", "map")
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        return f"map<{self.key}, {self.value}>"


@dataclass(frozen=True, slots=True)
class TupleType(Type):
    elems: tuple[Type, ...]

    def __init__(self, elems: tuple[Type, ...]) -> None:
        object.__setattr__(self, "name", "tuple")
        object.__setattr__(self, "elems", elems)

    def __str__(self) -> str:
        return "(" + ", ".join(map(str, self.elems)) + ")"


STRING = Type("string")
INT = Type("int")
FLOAT = Type("float")
BOOL = Type("bool")
DURATION = Type("duration")  # seconds, as a float at run time
VERIFICATION = Type("verification")  # none < email < phone < kyc
IP = Type("ip")  # an address, written as a string; `in` a CIDR set
CIDR_SET = Type("cidr_set")
REGEX = Type("regex")
REGEX_SET = Type("regex_set")  # a list of RE2 patterns matched as one set
PRICES = Type("prices")  # a price table (`prices` loader), read by price() and model_group()
NULL = Type("null")
ANY = Type("any")  # unknown: an error was already reported; suppresses cascades

NUMERIC = (INT, FLOAT)


def is_numeric(t: Type) -> bool:
    return t in NUMERIC or t == ANY


def is_stringlike(t: Type) -> bool:
    return t in (STRING, IP, ANY)


def unify_numeric(a: Type, b: Type) -> Type:
    if a == ANY or b == ANY:
        return ANY
    return INT if a == INT and b == INT else FLOAT


def assignable(actual: Type, expected: Type) -> bool:
    """Whether a value of type `actual` may stand where `expected` is wanted."""
    if actual == expected or ANY in (actual, expected) or actual == NULL:
        return True
    if expected == FLOAT and actual == INT:
        return True
    if expected == STRING and actual == IP:
        return True
    if isinstance(expected, (ListType, SetType)) and isinstance(actual, (ListType, SetType)):
        return assignable(actual.elem, expected.elem)
    if isinstance(expected, MapType) and isinstance(actual, MapType):
        return assignable(actual.key, expected.key) and assignable(actual.value, expected.value)
    return False
