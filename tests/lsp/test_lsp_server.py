"""`policyctl lsp` driven over stdio by pygls's LanguageClient, as an editor would:
open, edit, hover, complete, go to definition, find references, format and quick
fixes, on a copy of the shipped policies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsprotocol import types as T

from dsl.formatter import format_source
from policy_engine.cli.lint import lint_policy
from lsp_session import Session, apply, position_of, run

ROOT = Path(__file__).parents[2]


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", root)
    return root


def _codes(diags: list[T.Diagnostic]) -> list[str]:
    return [str(d.code) for d in diags]


def test_shipped_policies_open_hover_complete_definition_references(policies: Path) -> None:
    budgets = policies / "10-budgets.policy"
    coordination = policies / "20-coordination.policy"
    identity = policies / "00-identity.policy"
    text = budgets.read_text(encoding="utf-8")
    ctext = coordination.read_text(encoding="utf-8")

    async def scenario(s: Session) -> None:
        uri = s.open(budgets)
        # The whole folder is checked: every file gets its (empty) diagnostics.
        for f in sorted(policies.glob("*.policy")):
            assert await s.diagnostics_for(f.as_uri(), version=1 if f == budgets else None) == []

        # Hover: a field's type, a limit's window and maximum, a data list, a function.
        h = await s.hover(uri, position_of(text, "account.tier", delta=9))
        assert h is not None and "account.tier: string" in h.contents.value  # type: ignore[union-attr]
        assert h.range == T.Range(position_of(text, "account.tier"), position_of(text, "account.tier", delta=12))
        h = await s.hover(uri, position_of(text, "limit daily_output_tokens", delta=8))
        assert h is not None
        body = h.contents.value  # type: ignore[union-attr]
        assert "- window: `1d`" in body
        assert '- max: `if account.tier == "enterprise" then null else tier_daily_output[account.tier] ?? 1M`' in body
        assert "- measures: sum `least(request.max_tokens ?? 4096, 32k)`" in body
        h = await s.hover(uri, position_of(text, "tier_rpm[", delta=2))
        assert h is not None and 'data tier_rpm = csv("data/tier_limits.csv")' in h.contents.value  # type: ignore[union-attr]
        assert "type `map<string, int>`" in h.contents.value  # type: ignore[union-attr]

        curi = s.open(coordination)
        await s.diagnostics_for(curi)
        h = await s.hover(curi, position_of(ctext, "ip_prefix(", delta=3))
        assert h is not None and "ip_prefix(ip, int) -> string" in h.contents.value  # type: ignore[union-attr]

        # Signature help inside a call; the outline of a file.
        sig = await s.signature(
            curi, position_of(ctext, "ip_prefix(client.ip, 24)", delta=len("ip_prefix(client.ip, "))
        )
        assert sig is not None and sig.signatures[0].label == "ip_prefix(ip, int) -> string"
        assert sig.active_parameter == 1
        outline = await s.symbols(uri)
        assert [(x.name, x.detail) for x in outline][:3] == [
            ("tier_rpm", "data"),
            ("tier_daily_output", "data"),
            ("requests_per_minute", "limit throttle per 1m"),
        ]
        assert outline[2].selection_range.start == position_of(text, "requests_per_minute")

        # Definition of a let used here but defined in another file of the folder.
        use = position_of(ctext, "unless trusted", delta=8)
        locs = await s.definition(curi, use)
        itext = identity.read_text(encoding="utf-8")
        assert [(loc.uri, loc.range.start) for loc in locs] == [(identity.as_uri(), position_of(itext, "trusted ="))]
        # References: the definition and every use, across the folder's files.
        refs = await s.references(curi, use)
        assert (identity.as_uri(), position_of(itext, "trusted =")) in [(r.uri, r.range.start) for r in refs]
        uses = sum(f.read_text(encoding="utf-8").count("unless trusted") for f in policies.glob("*.policy"))
        assert len(refs) == 1 + uses
        assert {r.uri for r in refs} >= {identity.as_uri(), coordination.as_uri()}
        assert len(await s.references(curi, use, declaration=False)) == uses
        # The same for a data list: its declaration, and its one use.
        data_use = position_of(text, "tier_rpm[", delta=3)
        locs = await s.definition(uri, data_use)
        assert [(loc.uri, loc.range.start) for loc in locs] == [(budgets.as_uri(), position_of(text, "tier_rpm ="))]
        refs = await s.references(uri, data_use)
        assert [(r.uri, r.range.start) for r in refs] == [
            (budgets.as_uri(), position_of(text, "tier_rpm =")),
            (budgets.as_uri(), position_of(text, "tier_rpm[")),
        ]

        # Completion: fields after a section, names and functions in an expression,
        # clause keywords at the start of a line in a limit.
        items = await s.complete(uri, position_of(text, "account.tier", delta=8))
        assert {i.label for i in items} == {
            "id",
            "org",
            "age_days",
            "verification",
            "tier",
            "payment_fingerprint",
            "labels",
        }
        assert next(i for i in items if i.label == "age_days").detail == "float"
        line_start = position_of(text, "  window 1m")
        items = await s.complete(uri, line_start)
        labels = {i.label for i in items}
        assert {"window", "max", "key", "record", "on_error", "block", "reason", "throttle"} <= labels
        assert "retry_after" not in labels  # a rule clause, not a limit's
        old = "  max tier_rpm[account.tier] ?? 60"
        s.change(uri, old[:-2] + "t", T.Range(position_of(text, old), position_of(text, old, delta=len(old))))
        new = text.replace(old, old[:-2] + "t")
        items = await s.complete(uri, position_of(new, "?? t", delta=4))
        by_label = {i.label: i for i in items}
        assert {"trusted", "fresh_account", "tier_daily_output", "template_id", "account"} <= set(by_label)
        assert by_label["trusted"].kind == T.CompletionItemKind.Variable
        assert by_label["template_id"].detail == "template_id(string) -> string"
        assert "true" in by_label and "reason" not in by_label

        # Format: the shipped files are canonical; a mangled edit is put back.
        s.change(uri, text)
        assert await s.format(uri) == []
        mangled = text.replace("  window 1m\n", "      window   1m\n").replace("  count\n", "\tcount  \n")
        s.change(uri, mangled)
        edits = await s.format(uri)
        assert len(edits) == 1 and apply(mangled, edits) == text

    run(scenario, policies)


def test_edit_diagnostics_across_files_and_quick_fixes(policies: Path) -> None:
    identity = policies / "00-identity.policy"
    coordination = policies / "20-coordination.policy"
    itext = identity.read_text(encoding="utf-8")
    ctext = coordination.read_text(encoding="utf-8")

    async def scenario(s: Session) -> None:
        iuri = s.open(identity)
        assert await s.diagnostics_for(iuri) == []
        # Rename a let in the unsaved buffer: files that use it, open or not, report it.
        start = position_of(itext, "let trusted", delta=4)
        s.change(iuri, "trusty", T.Range(start, position_of(itext, "let trusted", delta=11)))
        diags = await s.diagnostics_for(iuri)
        assert "E0201" in _codes(diags)  # the let's own file uses it too (`unless trusted`)
        cdiags = await s.until(lambda: [d for d in s.diagnostics.get(coordination.as_uri(), []) if d.code == "E0201"])
        first = cdiags[0]
        assert first.message == "unknown name `trusted`\nhelp: did you mean `trusty`?"
        assert first.range == T.Range(
            position_of(ctext, "unless trusted", delta=7), position_of(ctext, "unless trusted", delta=14)
        )
        assert first.severity == T.DiagnosticSeverity.Error and first.source == "policyctl"
        # The "did you mean" quick fix replaces the misspelt span.
        actions = await s.code_actions(coordination.as_uri(), [first])
        assert [a.title for a in actions] == ["Replace with `trusty`"]
        edit = actions[0].edit
        assert edit is not None and edit.changes is not None
        assert list(edit.changes[coordination.as_uri()]) == [T.TextEdit(first.range, "trusty")]

        # A field typo in the open file: E0202 with lint's span, fixed by its quick fix.
        s.change(iuri, itext)  # undo the rename
        assert await s.diagnostics_for(iuri) == []
        typo = itext.replace("account.age_days < 7", "account.age_day < 7")
        s.change(iuri, typo)
        diags = await s.diagnostics_for(iuri)
        assert _codes(diags) == ["E0202"]
        assert diags[0].range == T.Range(
            position_of(typo, "account.age_day <"), position_of(typo, "account.age_day <", delta=15)
        )
        actions = await s.code_actions(iuri, diags)
        assert actions and actions[0].edit is not None and actions[0].edit.changes is not None
        fixed = apply(typo, actions[0].edit.changes[iuri])
        assert fixed == itext
        s.change(iuri, fixed)
        assert await s.diagnostics_for(iuri) == []

    run(scenario, policies)


def test_join_unless_quick_fix(tmp_path: Path) -> None:
    f = tmp_path / "p" / "main.policy"
    f.parent.mkdir()
    text = (
        "rule young {\n"
        "  deny when account.age_days < 7\n"
        '  unless account.tier == "pro"\n'
        '  unless "partner" in account.labels  # partners are vetted\n'
        '  reason "too young"\n'
        "}\n"
    )
    f.write_text(text, encoding="utf-8")

    async def scenario(s: Session) -> None:
        uri = s.open(f)
        diags = await s.diagnostics_for(uri)
        assert _codes(diags) == ["E0211"]
        actions = await s.code_actions(uri, diags)
        assert [a.title for a in actions] == ["Join the `unless` clauses with `or`"]
        assert actions[0].edit is not None and actions[0].edit.changes is not None
        joined = apply(text, actions[0].edit.changes[uri])
        assert '  unless account.tier == "pro" or "partner" in account.labels\n' in joined
        assert joined.count("unless") == 1
        s.change(uri, joined)
        assert await s.diagnostics_for(uri) == []

    run(scenario, f.parent)


def test_formatting_and_non_ascii_ranges(tmp_path: Path) -> None:
    f = tmp_path / "p" / "main.policy"
    f.parent.mkdir()
    # Characters before the error: é is one UTF-16 unit, 😀 is two (and four UTF-8 bytes).
    text = 'rule r {\n    deny   when "é😀" == account.tierr\n  reason "x"\n}\n'
    f.write_text(text, encoding="utf-8")

    async def scenario_utf16(s: Session) -> None:
        uri = s.open(f)
        diags = await s.diagnostics_for(uri)
        assert _codes(diags) == ["E0202"]
        col = len('    deny   when "é😀" == ')  # 24 characters
        assert diags[0].range == T.Range(T.Position(1, col + 1), T.Position(1, col + 1 + len("account.tierr")))
        # Hover on the field after the emoji resolves by UTF-16 position.
        s.change(uri, text.replace("tierr", "tier"))
        assert await s.diagnostics_for(uri) == []
        h = await s.hover(uri, T.Position(1, col + 1 + 9))
        assert h is not None and "account.tier: string" in h.contents.value  # type: ignore[union-attr]
        # Formatting: one edit to the whole document; the result is the formatter's.
        current = text.replace("tierr", "tier")
        edits = await s.format(uri)
        assert len(edits) == 1
        assert apply(current, edits) == format_source(current)
        s.change(uri, format_source(current))
        assert await s.format(uri) == []

    run(scenario_utf16, f.parent)

    async def scenario_utf8(s: Session) -> None:
        uri = s.open(f)
        diags = await s.diagnostics_for(uri)
        col = len('    deny   when "é😀" == '.encode())
        assert diags[0].range.start == T.Position(1, col)

    run(scenario_utf8, f.parent, encodings=["utf-8"])


def test_unsaved_new_file_joins_its_folder(policies: Path) -> None:
    new = policies / "50-new.policy"  # not on disk
    text = 'rule new_rule {\n  deny when trusted and tier_rpm["free"] > 1\n  reason "r"\n}\n'

    async def scenario(s: Session) -> None:
        uri = s.open(new, text)
        assert await s.diagnostics_for(uri) == []  # `trusted` and `tier_rpm` come from other files
        h = await s.hover(uri, position_of(text, "trusted"))
        assert h is not None and "let trusted = " in h.contents.value  # type: ignore[union-attr]
        # A buffer with no file is checked alone: `trusted` is unknown there.
        untitled = s.open("untitled:Untitled-1", text)
        assert _codes(await s.diagnostics_for(untitled)) == ["E0201", "E0201"]
        assert await s.diagnostics_for(uri) == []

    run(scenario, policies)


def test_a_1mib_policy_does_not_block_the_server(tmp_path: Path) -> None:
    """The check runs in a worker thread: while a check of a policy near the size
    limit is under way, completion is answered before its diagnostics arrive."""
    f = tmp_path / "p" / "big.policy"
    f.parent.mkdir()
    parts, size, i = [], 0, 0
    while size < (1 << 20) - 200:
        block = f'rule r{i} {{\n  deny when account.tier == "t{i}" and request.max_tokens > {i}\n  reason "r"\n}}\n\n'
        parts.append(block)
        size += len(block)
        i += 1
    # One error at the very end: its diagnostic shows the whole file was checked.
    text = "".join(parts) + 'rule last {\n  deny when account.tierr == "x"\n  reason "r"\n}\n'
    f.write_text(text, encoding="utf-8")

    async def scenario(s: Session) -> None:
        uri = s.open(f)
        await s.until(lambda: any(k == "log" and "checking" in p.message for k, p in s.events))
        items = await s.complete(uri, position_of(text, "account.tier", delta=8))
        assert "tier" in {i.label for i in items}
        answered = len(s.events)
        diags = await s.diagnostics_for(uri)
        assert not any(k == "diagnostics" for k, _ in s.events[:answered])  # completion came first
        assert _codes(diags) == ["E0202"]
        assert diags[0].range.start == position_of(text, "account.tierr ==")

    run(scenario, f.parent)


def test_measures_across_files(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    measures = root / "measures.policy"
    rules = root / "rules.policy"
    measures.write_text(
        "measure card_accounts {\n  key account.payment_fingerprint\n  distinct account.id\n  window 1d\n}\n",
        encoding="utf-8",
    )
    rtext = 'rule shared_card {\n  deny when measures.card_accounts > 3\n  reason "shared card"\n}\n'
    rules.write_text(rtext, encoding="utf-8")
    mtext = measures.read_text(encoding="utf-8")

    async def scenario(s: Session) -> None:
        uri = s.open(rules)
        assert await s.diagnostics_for(uri) == []
        use = position_of(rtext, "card_accounts", delta=3)
        h = await s.hover(uri, use)
        assert h is not None and "measure card_accounts" in h.contents.value  # type: ignore[union-attr]
        assert "- window: `1d`" in h.contents.value  # type: ignore[union-attr]
        [loc] = await s.definition(uri, use)
        assert (loc.uri, loc.range.start) == (measures.as_uri(), position_of(mtext, "card_accounts"))
        refs = await s.references(uri, use)
        assert [(r.uri, r.range.start) for r in refs] == [
            (measures.as_uri(), position_of(mtext, "card_accounts")),
            (uri, position_of(rtext, "measures.")),
        ]
        # `measures.` completes the measure names, while the line does not parse yet.
        edit_at = position_of(rtext, " > 3")
        s.change(uri, " and measures.", T.Range(edit_at, edit_at))
        typed = rtext.replace(" > 3", " and measures. > 3", 1)
        items = await s.complete(uri, position_of(typed, "and measures.", delta=len("and measures.")))
        assert [(i.label, i.detail) for i in items] == [("card_accounts", "measure: distinct")]

    run(scenario, root)


def test_same_diagnostics_as_lint_including_untested_rules_and_files_changed_on_disk(tmp_path: Path) -> None:
    """W0308 comes from running the tests beside the policy (on open and save);
    a file changed on disk that the editor does not have open is read again."""
    root = tmp_path / "p"
    (root / "tests").mkdir(parents=True)
    main = root / "main.policy"
    other = root / "other.policy"
    main.write_text(
        'rule kp {\n  deny when client.country == "KP"\n  reason "embargo"\n}\n\n'
        'rule young {\n  deny when account.age_days < 1\n  reason "too new"\n}\n',
        encoding="utf-8",
    )
    other.write_text("let unused_here = 1\n", encoding="utf-8")
    (root / "tests" / "main.test.yaml").write_text(
        "cases:\n- name: embargo\n  client: {country: KP}\n  account: {id: a, age_days: 10}\n"
        "  expect: {effect: deny, rules: [kp]}\n",
        encoding="utf-8",
    )

    def lint_view() -> dict[str, list[tuple[str, int, int]]]:
        _, expected = lint_policy(root.resolve())
        out: dict[str, list[tuple[str, int, int]]] = {}
        for d in expected:
            out.setdefault(Path(d.filename).as_uri(), []).append((d.code, d.line - 1, d.column - 1))
        return out

    def server_view(s: Session) -> dict[str, list[tuple[str, int, int]]]:
        return {
            uri: [(str(d.code), d.range.start.line, d.range.start.character) for d in ds]
            for uri, ds in s.diagnostics.items()
            if ds
        }

    async def scenario(s: Session) -> None:
        s.open(main)
        expected = lint_view()
        assert [c for c, _, _ in expected[main.as_uri()]] == ["W0308"]  # `young` has no test
        assert await s.until(lambda: server_view(s) == expected)
        # A file the editor does not have open changes on disk: the watcher's event rechecks.
        other.write_text("let broken = account.nope\n", encoding="utf-8")
        s.client.workspace_did_change_watched_files(
            T.DidChangeWatchedFilesParams([T.FileEvent(other.as_uri(), T.FileChangeType.Changed)])
        )
        broken = lint_view()
        assert "E0202" in [c for c, _, _ in broken[other.as_uri()]]
        assert await s.until(lambda: server_view(s) == broken)

    run(scenario, root)


def test_null_key_warning_and_its_quick_fix(tmp_path: Path) -> None:
    f = tmp_path / "p" / "main.policy"
    f.parent.mkdir()
    text = (
        "limit card_rate {\n  key account.payment_fingerprint  # one bucket per card\n  count\n  window 1m\n"
        '  max 60\n  reason "too many requests on this card"\n}\n'
    )
    f.write_text(text, encoding="utf-8")

    async def scenario(s: Session) -> None:
        uri = s.open(f)
        diags = await s.diagnostics_for(uri)
        assert _codes(diags) == ["W0312"] and diags[0].severity == T.DiagnosticSeverity.Warning
        assert diags[0].range.start == position_of(text, "account.payment_fingerprint")
        actions = await s.code_actions(uri, diags)
        assert [a.title for a in actions] == ["Guard the key: `when account.payment_fingerprint != null`"]
        assert actions[0].edit is not None and actions[0].edit.changes is not None
        fixed = apply(text, actions[0].edit.changes[uri])
        assert "# one bucket per card\n  when account.payment_fingerprint != null\n  count\n" in fixed
        s.change(uri, fixed)
        assert await s.diagnostics_for(uri) == []

    run(scenario, f.parent)
