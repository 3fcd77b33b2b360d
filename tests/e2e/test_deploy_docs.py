"""deploy/envoy/README.md stays in step with the template and the server's settings."""

from __future__ import annotations

import re
import string
from pathlib import Path

from gateway_harness import ROOT, TEMPLATE
from policy_engine.server.settings import load_settings

README = ROOT / "deploy" / "envoy" / "README.md"


def test_the_readme_sets_every_template_variable() -> None:
    template_vars = {
        m.group("braced") for m in string.Template.pattern.finditer(TEMPLATE.read_text()) if m.group("braced")
    }
    run_block = README.read_text().split("## Run it", 1)[1].split("```", 2)[1]
    exported = set(re.findall(r"\b([A-Z_]+)=", run_block))
    assert template_vars == exported


def test_the_readme_engine_settings_load(tmp_path: Path) -> None:
    (toml,) = re.findall(r"```toml\n(.*?)```", README.read_text(), re.DOTALL)
    config = tmp_path / "engine.toml"
    config.write_text(toml)
    s = load_settings(config)
    assert s.port == 50051 and s.envoy.xff_num_trusted_hops == 0
    assert (s.usage_prompt_tokens_header, s.usage_completion_tokens_header) == (
        "x-usage-prompt-tokens",
        "x-usage-completion-tokens",
    )
