"""A Pygments lexer for `.policy` files, registered as the `policy` lexer
(entry point `pygments.lexers`), so docs, `rich` and editors that use
Pygments highlight policies. Word lists come from the language itself."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from dsl.functions import FUNCTIONS, LOADERS
from dsl.keywords import CALENDAR, CALENDAR_UNITS, CLAUSES, DECLARATIONS, EFFECTS, MODES
from dsl.schema import ATTRIBUTE_SOURCES, MEASURES, SCHEMA, TYPE_WORDS

OPERATORS = ("and", "or", "not", "in", "matches", "if", "then", "else")
CONSTANTS = ("true", "false", "null")

_END = r"(?![A-Za-z0-9_])"


class PolicyLexer(RegexLexer):
    name = "Policy"
    aliases = ["policy"]
    filenames = ["*.policy"]
    mimetypes = ["text/x-policy"]
    url = "docs/language.md"

    tokens = {
        "root": [
            # An attribute's sources start their lines (`  envoy_metadata "ns" "key"`); its type follows `:`.
            (
                r"(\n[ \t]*)(" + "|".join(ATTRIBUTE_SOURCES) + r")\b(?=[ \t]*(\"|\n|#|\}))",
                bygroups(Whitespace, Keyword),
            ),
            (r"(:)([ \t]*)(" + "|".join(TYPE_WORDS) + r")\b", bygroups(Punctuation, Whitespace, Keyword.Type)),
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'r"[^"\n]*"', String.Regex),
            (r'"', String.Double, "string"),
            (r"\d+(\.\d+)?(ms|s|m|h|d|w)" + _END, Number.Float),  # durations
            (r"\d[\d_]*\.\d+([eE][+-]?\d+)?[kMG]?" + _END, Number.Float),
            (r"\d[\d_]*[eE][+-]?\d+" + _END, Number.Float),
            (r"\d[\d_]*[kMG]?" + _END, Number.Integer),
            # `usage.prompt_tokens` is a field even though `usage` is also a clause
            (r"\b(" + "|".join(SCHEMA) + r")(\.)([A-Za-z_]\w*)", bygroups(Name.Builtin, Punctuation, Name.Attribute)),
            # `measures.card_accounts` reads a measure
            (r"\b(" + MEASURES + r")(\.)([A-Za-z_]\w*)", bygroups(Name.Builtin.Pseudo, Punctuation, Name.Variable)),
            # `window calendar month in "Europe/Paris"`: the unit is a word of the clause, not a name
            (
                r"\b(" + CALENDAR + r")(\s+)(" + "|".join(CALENDAR_UNITS) + r")\b",
                bygroups(Keyword, Whitespace, Name.Constant),
            ),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(EFFECTS, suffix=r"\b"), Keyword.Reserved),
            (words(CLAUSES, suffix=r"\b"), Keyword),
            (words(OPERATORS, suffix=r"\b"), Operator.Word),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(MODES, suffix=r"\b"), Name.Constant),
            (words(tuple(FUNCTIONS) + tuple(LOADERS), suffix=r"(?=\s*\()"), Name.Function),
            (r"[A-Za-z_]\w*", Name),
            (r"\?\?|==|!=|<=|>=|[-+*/%<>=]", Operator),
            (r"[{}()\[\],.:]", Punctuation),
        ],
        "string": [
            (r'\\(["\\ntr0]|u[0-9A-Fa-f]{4})', String.Escape),
            (r'[^"\\\n]+', String.Double),
            (r'"', String.Double, "#pop"),
            (r"\n", Text, "#pop"),  # unterminated: the linter reports it (E0103)
            (r"\\", String.Double),
        ],
    }
