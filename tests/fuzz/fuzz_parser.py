"""Coverage-guided fuzzing (atheris, libFuzzer) of the language front end.

    python tests/fuzz/fuzz_parser.py -max_total_time=60 [CORPUS_DIR]

Each input is decoded as UTF-8 text (lossily) and run through parse, check, format
and, when it checks, compile (dsl_front.front_end). A traceback, a hang (use
-timeout=N) or a crash is a finding; diagnostics are the expected answer.
The shipped policies make a good seed corpus: copy them into CORPUS_DIR.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["dsl", "policy_engine.compiler"]):
    from dsl_front import front_end

_FOLDER = Path(tempfile.mkdtemp(prefix="pe-atheris-"))


def test_one_input(data: bytes) -> None:
    front_end(data.decode("utf-8", "replace"), _FOLDER)


def main() -> None:
    sys.setrecursionlimit(1000)  # the limit the server runs with; libFuzzer must not hide a RecursionError
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
