"""The functions a policy may call: their signatures, as the checker sees them.

Implementations live in `policy_engine` (signals and builtins); a test checks
that every name here has one there. `signal=True` marks a function that looks
at the prompt or the IP: the compiler caches its result per request, so a rule
set that calls `template_id(request.prompt)` five times computes it once.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl.types import BOOL, FLOAT, INT, IP, REGEX_SET, STRING, Type

# Parameter kinds beyond concrete types.
NUM = "number"  # int or float; the result of least/greatest/abs follows the arguments
SIZED = "sized"  # string, list, set or map
ZONE = "time zone"  # a constant string naming an IANA time zone ("Europe/Paris"), checked at load time
PRICE_CLASS = "token class"  # a constant string naming a column of the price table ("output"), checked at load time
# Functions that read the policy's price table (`data NAME = prices(...)`); the compiler passes it.
PRICED = frozenset({"price", "model_group"})

# What local_weekday returns, Monday first.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Func:
    name: str
    params: tuple[Type | str, ...]
    returns: Type | str
    doc: str
    signal: bool = False


_F = [
    # strings
    Func("lower", (STRING,), STRING, "lower-case text"),
    Func("upper", (STRING,), STRING, "upper-case text"),
    Func("trim", (STRING,), STRING, "text without leading and trailing white space"),
    Func("len", (SIZED,), INT, "length of a string, list, set or map"),
    Func("contains", (STRING, STRING), BOOL, "whether the first string contains the second"),
    Func("starts_with", (STRING, STRING), BOOL, "whether the first string starts with the second"),
    Func("ends_with", (STRING, STRING), BOOL, "whether the first string ends with the second"),
    # numbers
    Func("least", (NUM, NUM), NUM, "the smaller of two numbers"),
    Func("greatest", (NUM, NUM), NUM, "the larger of two numbers"),
    Func("abs", (NUM,), NUM, "absolute value"),
    Func("floor", (NUM,), INT, "largest integer not above the number"),
    Func("ceil", (NUM,), INT, "smallest integer not below the number"),
    # prompt signals
    Func("fingerprint", (STRING,), STRING, "normalised prompt fingerprint (case, space, punctuation folded)", True),
    Func("template_id", (STRING,), STRING, "prompt template id: numbers, names, quotes and code masked", True),
    Func(
        "template_prefix",
        (STRING, INT),
        STRING,
        "id of the template's first n words (a scaffold shared by many tasks)",
        True,
    ),
    Func("simhash", (STRING,), INT, "64-bit SimHash of the prompt", True),
    Func("near_dup_key", (STRING,), STRING, "a bucket key shared by near-duplicate prompts", True),
    Func("similarity", (STRING, STRING), FLOAT, "SimHash similarity of two texts, 0 to 1", True),
    Func("topic", (STRING,), STRING, "a coarse topic id (code, math, reasoning, ...)", True),
    Func("prompt_length", (STRING,), INT, "length in characters", True),
    Func("word_count", (STRING,), INT, "number of words", True),
    Func("question_count", (STRING,), INT, "number of questions", True),
    Func("digit_ratio", (STRING,), FLOAT, "share of digits among characters", True),
    Func("code_ratio", (STRING,), FLOAT, "share of characters inside code", True),
    Func("entropy", (STRING,), FLOAT, "character entropy in bits", True),
    Func("encoded_payload", (STRING,), BOOL, "whether the prompt hides text in base64 or hex", True),
    Func("leet_ratio", (STRING,), FLOAT, "share of words written in leetspeak (3xpl41n), 0 to 1", True),
    Func("script", (STRING,), STRING, 'dominant writing script of the letters ("latin", "cyrillic", "han", ...)', True),
    Func("matches_any", (STRING, REGEX_SET), BOOL, "whether any pattern of a `patterns` data list matches", True),
    Func("match_count", (STRING, REGEX_SET), INT, "how many patterns of a `patterns` data list match", True),
    # time: a time in seconds since the epoch (request.ts) read in a time zone
    Func("local_hour", (FLOAT, ZONE), INT, "the hour of a time in a time zone, 0 to 23"),
    Func("local_weekday", (FLOAT, ZONE), STRING, 'the day of the week of a time in a time zone, "mon" to "sun"'),
    Func("local_date", (FLOAT, ZONE), STRING, 'the date of a time in a time zone, "2026-01-31"'),
    Func("local_time", (FLOAT, ZONE), STRING, 'the hours and minutes of a time in a time zone, "09:30"'),
    # prices: the policy's price table (`data prices = prices("prices.csv")`)
    Func(
        "price",
        (STRING, PRICE_CLASS),
        FLOAT,
        'the price of one token of a class ("input", "cached_input", "output", "reasoning") of a model,'
        " from the price table; a model it does not list: its `*` row, else null",
    ),
    Func(
        "model_group",
        (STRING,),
        STRING,
        "the group of a model in the price table (the model itself when it has none); null for a model it does not list",
    ),
    # network signals
    Func("ip_prefix", (IP, INT), STRING, "the network of an address as CIDR text, e.g. ip_prefix(client.ip, 24)", True),
    Func("geo_country", (IP,), STRING, "ISO country of an address, from the embedded geo data", True),
    Func("geo_asn", (IP,), INT, "autonomous system number of an address, from the embedded data", True),
    Func("network_kind", (IP,), STRING, 'kind of network: "education", "hosting" or "other", from the AS name', True),
]

FUNCTIONS: dict[str, Func] = {f.name: f for f in _F}

# Data list loaders: `data NAME = loader("path")`.
LOADERS: dict[str, str] = {
    "strings": "one string per line -> set<string>",
    "ints": "one integer per line -> set<int>",
    "cidrs": "one CIDR or address per line -> a CIDR set for `in`",
    "patterns": "one RE2 pattern per line (case-insensitive) -> a pattern set for matches_any",
    "csv": "two columns, key and value, with a header row -> map<string, value>",
    "json": "a JSON object (-> map) or array (-> set)",
    "prices": "a price table: model, group and a price per million tokens per token class -> price(), model_group()",
}
