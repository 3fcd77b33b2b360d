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


# --- docs/gateways.md and the nginx, Caddy and Traefik reference configs ----------------------

GATEWAYS = ROOT / "docs" / "gateways.md"


def _section(title: str) -> str:
    return GATEWAYS.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_gateways_doc_renders_every_template_variable() -> None:
    from proxy_harness import NGINX_TEMPLATE, TRAEFIK_DYNAMIC, TRAEFIK_STATIC, template_variables

    for title, template in (("nginx", NGINX_TEMPLATE), ("Traefik", TRAEFIK_STATIC), ("Traefik", TRAEFIK_DYNAMIC)):
        text = _section(title)
        calls = {
            Path(path).name: set(re.findall(r"\$\{([A-Z_]+)\}", names))
            for names, path in re.findall(r"envsubst '([^']*)' \\?\s*< (\S+)", text)
        }
        wanted = template_variables(template)
        assert calls[template.name] == wanted, template.name  # the envsubst list
        assert wanted <= set(re.findall(r"\b([A-Z_]+)=", text)), template.name  # all exported
        assert (
            f"envsubst '{' '.join('${' + v + '}' for v in sorted(wanted, key=template.read_text().index))}'"
            in template.read_text()
        ), template.name  # the template's own comment says the same


def test_gateways_doc_sets_every_caddy_variable() -> None:
    from proxy_harness import CADDYFILE

    wanted = set(re.findall(r"\{\$([A-Z_]+)\}", CADDYFILE.read_text().split("{\n", 1)[1]))
    block = _section("Caddy").split("```sh", 1)[1].split("```", 1)[0]
    assert wanted == set(re.findall(r"\b([A-Z_]+)=", block))
