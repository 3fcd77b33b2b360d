#!/usr/bin/env python3
"""Write a simulated month of traffic for the billing example, one request per line
(the request schema `policyctl replay` reads), each with the usage its call reported.

    python3 examples/billing/simulate_month.py > month.jsonl
    policyctl replay --policies examples/billing month.jsonl --out decisions.jsonl

January 2026 and the first days of February, Paris time: free accounts that spend
their $2 per model family before the month ends (and get it back on the 1st), pro
accounts, an internal evaluation account that nothing limits, calls that hit the
prompt cache or reason, and a few answered by a fallback model. Seeded: the same
file every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
START = dt.datetime(2026, 1, 1, tzinfo=PARIS)
DAYS = 34  # into February: the budgets reset at midnight on the 1st
# account -> (tier, calls per day, models it calls)
ACCOUNTS = {
    **{
        f"free-{i}": ("free", 2 + 3 * i, ["frontier-large", "frontier-large-2026-06", "frontier-mini"])
        for i in range(4)
    },
    "free-night-owl": ("free", 6, ["thinker-1", "frontier-mini"]),
    **{
        f"pro-{i}": ("pro", 20 + 10 * i, ["frontier-large-2026-06", "thinker-1", "thinker-1-preview"]) for i in range(2)
    },
    "eval-bot": ("free", 40, ["frontier-large", "thinker-1"]),
}


def call(rnd: random.Random, n: int, account: str, tier: str, model: str, ts: float) -> dict[str, object]:
    max_tokens = rnd.choice([1000, 4000, 16000, 32000])
    prompt = rnd.randint(200, 8000)
    completion = rnd.randint(max_tokens // 10, max_tokens)
    usage = {
        "prompt_tokens": prompt,
        "cached_input_tokens": rnd.choice([0, 0, prompt // 2, prompt - 100]),
        "completion_tokens": completion,
        "reasoning_tokens": completion // 2 if model.startswith("thinker") else 0,
    }
    if rnd.random() < 0.05:
        usage["model"] = "frontier-mini"  # the gateway fell back to the small model
    return {
        "request": {"id": f"m-{n}", "ts": ts, "model": model, "max_tokens": max_tokens, "prompt_tokens": prompt},
        "account": {"id": account, "tier": tier, "age_days": 200, "verification": "kyc"},
        "usage": usage,
    }


def month(seed: int) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    calls: list[tuple[float, str, str, str]] = []
    for account, (tier, per_day, models) in ACCOUNTS.items():
        for day in range(DAYS):
            midnight = (START + dt.timedelta(days=day)).timestamp()
            for _ in range(rnd.randint(per_day // 2, per_day)):
                calls.append((midnight + rnd.uniform(0, 86400), account, tier, rnd.choice(models)))
    calls.sort()
    return [call(rnd, n, account, tier, model, round(ts, 3)) for n, (ts, account, tier, model) in enumerate(calls)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    for line in month(args.seed):
        sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
