"""A test editor: pygls's LanguageClient driving `policyctl lsp` over stdio."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

POLICYCTL = Path(sys.executable).with_name("policyctl")
WAIT = 120.0  # seconds any one answer may take on a loaded machine (a bound, not a measurement)


class Session:
    """One server process and the client's view of it: every notification it sent,
    in order, and the latest diagnostics per URI."""

    def __init__(self) -> None:
        self.client = LanguageClient("policy-tests", "1")
        self.events: list[tuple[str, Any]] = []  # ("diagnostics" | "log", params), as received
        self.diagnostics: dict[str, list[T.Diagnostic]] = {}
        self.versions: dict[str, int] = {}
        self._changed = asyncio.Event()

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(_: LanguageClient, params: T.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)
            self.events.append(("diagnostics", params))
            self._changed.set()

        @self.client.feature(T.WINDOW_LOG_MESSAGE)
        def _log(_: LanguageClient, params: T.LogMessageParams) -> None:
            self.events.append(("log", params))
            self._changed.set()

    async def start(
        self, root: Path, encodings: list[str] | None = None, check_delay: float = 0.05
    ) -> T.InitializeResult:
        await self.client.start_io(str(POLICYCTL), "lsp", "--check-delay", str(check_delay))
        caps = T.ClientCapabilities(
            general=T.GeneralClientCapabilities(position_encodings=encodings) if encodings else None,
        )
        result = await asyncio.wait_for(
            self.client.initialize_async(
                T.InitializeParams(
                    capabilities=caps,
                    root_uri=root.as_uri(),
                    workspace_folders=[T.WorkspaceFolder(root.as_uri(), root.name)],
                )
            ),
            WAIT,
        )
        self.client.initialized(T.InitializedParams())
        return result

    async def stop(self) -> None:
        await asyncio.wait_for(self.client.shutdown_async(None), WAIT)
        self.client.exit(None)
        await asyncio.wait_for(self.client.stop(), WAIT)

    async def until(self, ready: Callable[[], Any]) -> Any:
        """Wait for a notification after which `ready()` is true (returns its value)."""

        async def wait() -> Any:
            while not (value := ready()):
                self._changed.clear()
                await self._changed.wait()
            return value

        return await asyncio.wait_for(wait(), WAIT)

    # ---- documents
    def open(self, path: Path | str, text: str | None = None) -> str:
        """Open a file (its text from disk unless given), or a URI that is not a file."""
        uri = path.as_uri() if isinstance(path, Path) else path
        self.versions[uri] = 1
        self.client.text_document_did_open(
            T.DidOpenTextDocumentParams(
                T.TextDocumentItem(
                    uri,
                    "policy",
                    1,
                    Path(path).read_text(encoding="utf-8") if text is None else text,
                )
            )
        )
        return uri

    def change(self, uri: str, new_text: str, range: T.Range | None = None) -> None:
        """An edit: `new_text` replaces `range` (incremental), or the whole text."""
        self.versions[uri] += 1
        change: Any = (
            T.TextDocumentContentChangePartial(range=range, text=new_text)
            if range is not None
            else T.TextDocumentContentChangeWholeDocument(text=new_text)
        )
        self.client.text_document_did_change(
            T.DidChangeTextDocumentParams(
                T.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
                [change],
            )
        )

    async def diagnostics_for(self, uri: str, version: int | None = None) -> list[T.Diagnostic]:
        """The diagnostics published for `uri` at its latest version."""
        want = self.versions.get(uri) if version is None else version

        def ready() -> list[T.Diagnostic] | None:
            for kind, p in reversed(self.events):
                if kind == "diagnostics" and p.uri == uri and (want is None or p.version == want):
                    return [p]
            return None

        params = (await self.until(ready))[0]
        return list(params.diagnostics)

    # ---- requests
    async def hover(self, uri: str, pos: T.Position) -> T.Hover | None:
        return await asyncio.wait_for(
            self.client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), pos)), WAIT
        )

    async def complete(self, uri: str, pos: T.Position) -> list[T.CompletionItem]:
        res = await asyncio.wait_for(
            self.client.text_document_completion_async(T.CompletionParams(T.TextDocumentIdentifier(uri), pos)), WAIT
        )
        return [] if res is None else list(res.items) if isinstance(res, T.CompletionList) else list(res)

    async def definition(self, uri: str, pos: T.Position) -> list[T.Location]:
        res = await asyncio.wait_for(
            self.client.text_document_definition_async(T.DefinitionParams(T.TextDocumentIdentifier(uri), pos)), WAIT
        )
        if res is None:
            return []
        found = [res] if isinstance(res, T.Location) else list(res)
        return [loc for loc in found if isinstance(loc, T.Location)]

    async def references(self, uri: str, pos: T.Position, declaration: bool = True) -> list[T.Location]:
        res = await asyncio.wait_for(
            self.client.text_document_references_async(
                T.ReferenceParams(T.ReferenceContext(declaration), T.TextDocumentIdentifier(uri), pos)
            ),
            WAIT,
        )
        return list(res or [])

    async def symbols(self, uri: str) -> list[T.DocumentSymbol]:
        res = await asyncio.wait_for(
            self.client.text_document_document_symbol_async(T.DocumentSymbolParams(T.TextDocumentIdentifier(uri))), WAIT
        )
        return [x for x in (res or []) if isinstance(x, T.DocumentSymbol)]

    async def signature(self, uri: str, pos: T.Position) -> T.SignatureHelp | None:
        return await asyncio.wait_for(
            self.client.text_document_signature_help_async(T.SignatureHelpParams(T.TextDocumentIdentifier(uri), pos)),
            WAIT,
        )

    async def format(self, uri: str) -> list[T.TextEdit]:
        res = await asyncio.wait_for(
            self.client.text_document_formatting_async(
                T.DocumentFormattingParams(T.TextDocumentIdentifier(uri), T.FormattingOptions(2, True))
            ),
            WAIT,
        )
        return list(res or [])

    async def code_actions(self, uri: str, diags: list[T.Diagnostic]) -> list[T.CodeAction]:
        rng = diags[0].range if diags else T.Range(T.Position(0, 0), T.Position(0, 0))
        res = await asyncio.wait_for(
            self.client.text_document_code_action_async(
                T.CodeActionParams(T.TextDocumentIdentifier(uri), rng, T.CodeActionContext(diags))
            ),
            WAIT,
        )
        return [a for a in (res or []) if isinstance(a, T.CodeAction)]


def run(scenario: Callable[[Session], Any], root: Path, **start: Any) -> None:
    """Run `scenario(session)` against a fresh server on `root`, and shut it down."""

    async def main() -> None:
        s = Session()
        await s.start(root, **start)
        try:
            await scenario(s)
        finally:
            await s.stop()

    asyncio.run(main())


def apply(text: str, edits: Sequence[T.TextEdit], encoding: str = "utf-16") -> str:
    """The text after the edits (ranges in the client's encoding), applied last first."""
    from policy_engine.lsp.positions import LineIndex

    index = LineIndex(text)
    spans = sorted(
        ((index.offset(e.range.start, encoding), index.offset(e.range.end, encoding), e.new_text) for e in edits),
        reverse=True,
    )
    out = index.text
    for start, end, new in spans:
        out = out[:start] + new + out[end:]
    return out


def position_of(text: str, needle: str, nth: int = 0, delta: int = 0) -> T.Position:
    """The UTF-16 position of the `nth` occurrence of `needle` (plus `delta` characters)."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    i += delta
    line = text.count("\n", 0, i)
    col_text = text[text.rfind("\n", 0, i) + 1 : i]
    return T.Position(line, len(col_text.encode("utf-16-le")) // 2)
