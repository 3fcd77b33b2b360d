"""`policyctl eval --policies DIR --request FILE|-`: one decision, as JSON or text."""

from __future__ import annotations

import asyncio
import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from policy_engine.cli.common import EXIT_OK, EXIT_USAGE, RedisOption, StoreFlag, StoreOption, err, load_or_exit
from policy_engine.cli.common import read_input
from policy_engine.context import Context, RequestContext, describe_validation_error
from policy_engine.decision import Decision
from policy_engine.engine import Engine
from policy_engine.explain import render_text
from policy_engine.policyset import PolicySet


class EvalFormat(str, Enum):
    json = "json"
    text = "text"


def eval_cmd(
    policies: Annotated[Path, typer.Option("--policies", "-p", help="policy folder or file")],
    request: Annotated[str, typer.Option("--request", "-r", help="request context JSON file, or - for stdin")],
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="add the trace: every rule, limit and measure, why each did or did not apply, the signals computed",
        ),
    ] = False,
    format: Annotated[
        EvalFormat,
        typer.Option(
            "--format", "-f", help="json, or text: the decision (and with --explain its trace) laid out for reading"
        ),
    ] = EvalFormat.json,
    store: StoreOption = None,
    redis: RedisOption = None,
) -> None:
    """Evaluate one request context against a policy and print the decision."""
    store_flag = StoreFlag.of(store, redis)
    policy = load_or_exit([policies])
    text = read_input(request)
    try:
        model = RequestContext.model_validate_json(text)
    except ValidationError as e:
        err("error: invalid request context\n" + describe_validation_error(e))
        raise typer.Exit(EXIT_USAGE) from None
    ctx = Context.from_model(model)
    decision = asyncio.run(_decide(policy, ctx, explain, store_flag))
    if format is EvalFormat.text:
        typer.echo(render_text(decision, policy), nl=False)
    else:
        typer.echo(json.dumps(decision.to_dict(), indent=2))
    raise typer.Exit(EXIT_OK)


async def _decide(policy: PolicySet, ctx: Context, explain: bool, store_flag: StoreFlag) -> Decision:
    store = store_flag.open()
    try:
        engine = Engine(policy, store)
        return await engine.decide(ctx, ctx.request_ts, explain=explain)
    finally:
        await store.close()
