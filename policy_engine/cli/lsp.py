"""`policyctl lsp`: the language server, speaking LSP on stdin and stdout."""

from __future__ import annotations

import logging
from typing import Annotated

import typer


def lsp_cmd(
    check_delay: Annotated[
        float, typer.Option("--check-delay", help="seconds of quiet after an edit before the policy is checked")
    ] = 0.3,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log to stderr")] = False,
) -> None:
    """Run the language server for policy files on stdio (for editors; see docs/editors.md)."""
    from policy_engine.lsp.server import create_server  # pygls loads only for this command

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    create_server(check_delay=check_delay).start_io()
