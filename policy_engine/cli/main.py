"""`policyctl`: one typer app; one module per command."""

from __future__ import annotations

import typer

from policy_engine.cli.calibrate import calibrate_cmd
from policy_engine.cli.client import admin_app, client_app
from policy_engine.cli.diff import diff_cmd
from policy_engine.cli.eval import eval_cmd
from policy_engine.cli.fmt import fmt_cmd
from policy_engine.cli.lint import lint_cmd
from policy_engine.cli.lsp import lsp_cmd
from policy_engine.cli.replay import replay_cmd
from policy_engine.cli.serve import serve_cmd
from policy_engine.cli.simulate import score_cmd, simulate_cmd
from policy_engine.cli.test import test_cmd

app = typer.Typer(
    name="policyctl",
    help="Policy-as-code rate and access control for AI inference APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: it wraps to the terminal (80 columns in a CI log) and puts
    # a long option's help on the next line, where rich's panels cut option names.
    rich_markup_mode=None,
)

# Each command's line in `policyctl --help`: short enough for 80 columns (click
# would cut a longer first sentence of the docstring with "...").
SHORT_HELP = {
    "lint": "Check policies: syntax, names, types, semantic warnings.",
    "fmt": "Format policies (in place unless --check or --diff).",
    "eval": "Evaluate one request context and print the decision.",
    "test": "Run policy test files (*.test.yaml, tests/*.yaml).",
    "simulate": "Generate a simulated day of benign and campaign traffic.",
    "score": "Score a replay against the simulator's ground truth.",
    "replay": "Replay recorded traffic on a simulated clock.",
    "diff": "Show how decisions change between two policy versions.",
    "calibrate": "Suggest limit maximums from recorded traffic.",
    "serve": "Serve decisions over gRPC.",
    "lsp": "Run the language server (for editors).",
}

for _name, _cmd in (
    ("lint", lint_cmd),
    ("fmt", fmt_cmd),
    ("eval", eval_cmd),
    ("test", test_cmd),
    ("simulate", simulate_cmd),
    ("score", score_cmd),
    ("replay", replay_cmd),
    ("diff", diff_cmd),
    ("calibrate", calibrate_cmd),
    ("serve", serve_cmd),
    ("lsp", lsp_cmd),
):
    app.command(_name, short_help=SHORT_HELP[_name])(_cmd)
app.add_typer(client_app, name="client", short_help="Talk to a running server: check, report, status.")
app.add_typer(admin_app, name="admin", short_help="A server's admin service: state, reset, dry run.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
