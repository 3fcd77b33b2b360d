"""`policyctl`: one typer app; one module per command."""

from __future__ import annotations

import typer

from policy_engine.cli.calibrate import calibrate_cmd
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
)

app.command("lint")(lint_cmd)
app.command("fmt")(fmt_cmd)
app.command("eval")(eval_cmd)
app.command("test")(test_cmd)
app.command("simulate")(simulate_cmd)
app.command("score")(score_cmd)
app.command("replay")(replay_cmd)
app.command("diff")(diff_cmd)
app.command("calibrate")(calibrate_cmd)
app.command("serve")(serve_cmd)
app.command("lsp")(lsp_cmd)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
