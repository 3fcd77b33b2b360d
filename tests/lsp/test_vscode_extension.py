"""editors/vscode: the manifest names files that exist, the grammar is the one the
language ships (a link to dsl/policy.tmLanguage.json), and the scope and language names agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
EXT = ROOT / "editors" / "vscode"


def test_manifest_language_grammar_and_client() -> None:
    manifest = json.loads((EXT / "package.json").read_text(encoding="utf-8"))
    [language] = manifest["contributes"]["languages"]
    [grammar] = manifest["contributes"]["grammars"]
    assert language["id"] == "policy" and language["extensions"] == [".policy"]
    assert grammar["language"] == language["id"]
    assert f"onLanguage:{language['id']}" in manifest["activationEvents"]

    grammar_file = EXT / grammar["path"]
    assert grammar_file.is_file()
    # A link to the grammar the language ships, so the two cannot drift apart.
    assert grammar_file.is_symlink() and grammar_file.resolve() == (ROOT / "dsl" / "policy.tmLanguage.json").resolve()
    tm = json.loads(grammar_file.read_text(encoding="utf-8"))
    assert grammar["scopeName"] == tm["scopeName"] == "source.policy"
    assert tm["fileTypes"] == [ext.lstrip(".") for ext in language["extensions"]]
    # Every scope the grammar assigns ends in the language's own suffix.
    names = re.findall(r'"name":\s*"([^"]+)"', grammar_file.read_text(encoding="utf-8"))
    assert names and all(n.endswith(".policy") for n in names if n != tm["name"])

    config = json.loads((EXT / language["configuration"]).read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "#"

    main = (EXT / manifest["main"]).read_text(encoding="utf-8")
    assert "vscode-languageclient" in manifest["dependencies"]
    assert 'require("vscode-languageclient/node")' in main
    assert '["lsp"' in main and 'language: "policy"' in main
    default_path = manifest["contributes"]["configuration"]["properties"]["policy.server.path"]["default"]
    assert default_path == "policyctl"
