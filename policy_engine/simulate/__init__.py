"""Traffic simulation and scoring: measure a policy against a simulated day.

`generator.write` makes TRAFFIC.jsonl (request contexts) and TRUTH.jsonl (who sent
each request) from a world drawn per seed (`world.py`); `policyctl replay` turns
the traffic into DECISIONS.jsonl; `scorer.score` joins the three. See
docs/simulation.md.
"""

from policy_engine.simulate.generator import (
    PopulationSpec,
    SimConfig,
    describe,
    generate,
    population_params,
    population_specs,
    write,
)
from policy_engine.simulate.scorer import Score, ScoreError, score

__all__ = [
    "PopulationSpec",
    "SimConfig",
    "describe",
    "generate",
    "population_params",
    "population_specs",
    "write",
    "Score",
    "ScoreError",
    "score",
]
