"""A short, bounded run of the coverage-guided parser fuzzer (tests/fuzz/fuzz_parser.py),
seeded with the shipped policies. A fixed libFuzzer seed, so that CI explores the
same inputs each time (a finding reproduces); longer runs with other seeds are
for nights and laptops: `python tests/fuzz/fuzz_parser.py -max_total_time=600 -seed=N CORPUS`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

HERE = Path(__file__).resolve().parent
SECONDS = 10


def test_atheris_finds_nothing_in_a_short_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for p in (HERE.parents[1] / "policies").glob("*.policy"):
        shutil.copy(p, corpus / p.name)
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "fuzz_parser.py"),
            f"-max_total_time={SECONDS}",
            "-seed=1",
            "-timeout=20",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        cwd=tmp_path,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "Done" in log and not list(tmp_path.glob("crash-*"))
