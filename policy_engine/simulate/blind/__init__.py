"""The blind world: a third, independently written picture of inference-API
traffic, by an author who never saw the defence it will judge.

`policyctl simulate --world blind` writes it in the same two files as the
default world (docs/simulation.md, "Files"); docs/worlds.md says what it
models, from which public reports, and what it leaves out.
"""

from policy_engine.simulate.blind.world import BlindConfig, describe, draw_params, generate, population_names, write

__all__ = ["BlindConfig", "describe", "draw_params", "generate", "population_names", "write"]
