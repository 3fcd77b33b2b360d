"""Text of evaluation harnesses: benchmark items, as public suites format them.

An item's text depends only on (suite, index), never on the seed or the
harness: every harness that runs a suite sends the very same prompts, as the
public benchmarks are the same for everyone.
"""

from __future__ import annotations

import random

from policy_engine.simulate.prompts import FIRST_NAMES

# The 57 subjects of the well-known multiple-choice benchmark.
MCQ_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
)
SUITES: tuple[str, ...] = ("mcq", "math", "code")
SUITE_SIZE = {"mcq": 14_042, "math": 5_000, "code": 164}
COT = "Let's think step by step."

_STEMS = (
    "Which of the following statements about {t} is correct?",
    "Which of the following best describes {t}?",
    "Which of the following is NOT a property of {t}?",
    "In the context of {s}, {t} is most closely associated with",
    "A researcher studying {t} would most likely observe which of the following?",
    "Which of the following is the primary reason {t} matters in {s}?",
)
_OPTIONS = (
    "it increases monotonically",
    "it depends on the reference frame",
    "it is conserved",
    "it was first described in the 19th century",
    "it applies only to closed systems",
    "it has no empirical support",
    "it is a special case of a more general result",
    "it requires a central authority",
    "it reduces variance at the cost of bias",
    "it is determined by market forces",
)
_TERMS = (
    "entropy",
    "the Krebs cycle",
    "comparative advantage",
    "the social contract",
    "a normal subgroup",
    "stare decisis",
    "cognitive dissonance",
    "the Doppler effect",
    "an eigenvector",
    "informed consent",
    "double-entry bookkeeping",
    "a confidence interval",
    "natural selection",
    "the separation of powers",
    "gradient descent",
    "a buffer overflow",
    "the placebo effect",
    "opportunity cost",
)


def _mcq(rng: random.Random, subject: str, with_answer: bool) -> str:
    s = subject.replace("_", " ")
    opts = rng.sample(_OPTIONS, 4)
    text = (
        rng.choice(_STEMS).format(t=rng.choice(_TERMS), s=s)
        + "\n"
        + "\n".join(f"{letter}. {o}" for letter, o in zip("ABCD", opts))
        + "\nAnswer:"
    )
    return text + (f" {rng.choice('ABCD')}\n\n" if with_answer else "")


_WORD_PROBLEMS = (
    "{n1} sold {a} clips in April and half as many in May. How many clips did {n1} sell in April and May together?",
    "A baker makes {a} loaves a day and sells each for ${b}. Ingredients cost ${c} a day. What is the weekly profit?",
    "{n1} has {a} marbles. {n2} has {b} more than twice as many. How many marbles do they have together?",
    "A train travels {a} km in {b} hours, then {c} km in 2 hours. What is its average speed in km/h?",
    "Find the number of ordered pairs of positive integers (x, y) with x + y = {a} and gcd(x, y) = 1.",
    "What is the remainder when {a}^{b} is divided by 7?",
    "How many positive divisors does {a}{c} have?",
    "If f(x) = {b}x^2 - {c}x + {a}, what is the minimum value of f over the real numbers?",
)
_CODE_TASKS = (
    (
        "has_close_elements",
        "numbers: list[float], threshold: float",
        "bool",
        "Check if any two numbers in the list are closer to each other than the threshold.",
    ),
    (
        "separate_paren_groups",
        "paren_string: str",
        "list[str]",
        "Split a string of balanced parenthesis groups into separate strings.",
    ),
    ("truncate_number", "number: float", "float", "Return the decimal part of a positive floating point number."),
    (
        "below_zero",
        "operations: list[int]",
        "bool",
        "Given deposits and withdrawals starting from zero, return True if the balance ever falls below zero.",
    ),
    (
        "mean_absolute_deviation",
        "numbers: list[float]",
        "float",
        "Return the mean absolute deviation around the mean of the list.",
    ),
    (
        "intersperse",
        "numbers: list[int], delimiter: int",
        "list[int]",
        "Insert the delimiter between every two consecutive elements.",
    ),
)


def item(suite: str, index: int, subject: str | None = None, shots: int = 0, cot: bool = False) -> str:
    """The prompt of benchmark item `index` of `suite` (mcq items belong to `subject`)."""
    rng = random.Random(f"bench|{suite}|{subject}|{index}")
    n1, n2 = rng.sample(FIRST_NAMES, 2)
    if suite == "mcq":
        subject = subject or MCQ_SUBJECTS[index % len(MCQ_SUBJECTS)]
        head = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        text = (
            head
            + "".join(_mcq(random.Random(f"bench|mcq|{subject}|shot|{k}"), subject, True) for k in range(shots))
            + _mcq(rng, subject, False)
        )
        return text.replace("\nAnswer:", f"\nAnswer: {COT}") if cot and text.endswith("Answer:") else text
    if suite == "math":
        a, b, c = rng.randint(12, 90), rng.randint(2, 9), rng.randint(3, 40)
        q = rng.choice(_WORD_PROBLEMS).format(n1=n1, n2=n2, a=a, b=b, c=c)
        return f"Question: {q}\nAnswer:" + (f" {COT}" if cot else "")
    name, args, ret, doc = _CODE_TASKS[index % len(_CODE_TASKS)]
    example = ", ".join(str(rng.randint(-5, 20)) for _ in range(rng.randint(2, 6)))
    return f'def {name}({args}) -> {ret}:\n    """ {doc}\n    >>> {name}([{example}])\n    """\n' + (
        f"# {COT}\n" if cot else ""
    )
