"""Traffic simulation and scoring: measure a policy against a simulated day.

`generator.write` makes TRAFFIC.jsonl (request contexts) and TRUTH.jsonl (who sent
each request); `policyctl replay` turns the traffic into DECISIONS.jsonl;
`scorer.score` joins the three. See docs/simulation.md.
"""

from policy_engine.simulate.generator import DEFAULT_POPULATIONS, PopulationSpec, SimConfig, generate, write
from policy_engine.simulate.scorer import Score, ScoreError, score

__all__ = ["DEFAULT_POPULATIONS", "PopulationSpec", "SimConfig", "generate", "write", "Score", "ScoreError", "score"]
