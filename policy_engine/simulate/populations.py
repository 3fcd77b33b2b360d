"""The simulated populations, by name: honest ones (benign.py) and campaigns
(campaigns.py), built on base.py. See docs/simulation.md for what each models."""

from __future__ import annotations

from policy_engine.simulate.base import MODELS, Account, Draft, Ids, Population, Window
from policy_engine.simulate.benign import BENIGN
from policy_engine.simulate.campaigns import CAMPAIGNS

POPULATIONS: dict[str, type[Population]] = {p.name: p for p in BENIGN + CAMPAIGNS}

__all__ = ["MODELS", "POPULATIONS", "Account", "Draft", "Ids", "Population", "Window"]
