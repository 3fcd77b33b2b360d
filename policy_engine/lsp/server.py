"""The language server: pygls wiring, and keeping the checks off the typing path.

An edit schedules a check of its policy folder after a short quiet period
(`check_delay`); the check runs in a worker thread, one at a time per folder,
and publishes diagnostics for every file of the folder. Requests that need the
checked tree (hover, definition, references, quick fixes) wait for a check of
the text the editor holds now; completion never waits: it reads the grammar
at the cursor and the names of the last check.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from dsl import ast as A
from dsl.diagnostics import Diagnostic, PolicyError, Severity
from dsl.formatter import format_source
from dsl.load import POLICY_SUFFIX
from policy_engine.lsp import features
from policy_engine.lsp.analysis import Analysis, analyze_buffer, analyze_folder, policy_root
from policy_engine.lsp.positions import UTF8, UTF16, UTF32, LineIndex, normalise, span_range, whole_document
from policy_engine.testing import ExercisedBlocks, tested_names

log = logging.getLogger(__name__)

CHECK_DELAY = 0.3  # seconds of quiet after an edit before the folder is checked (`policyctl lsp --check-delay`)
FRESH_TIMEOUT = 30.0  # how long a request waits for the check of the current text
TRIGGERS = ["."]


@dataclass
class Folder:
    """One policy folder (or one buffer with no file) and its last check."""

    key: str
    root: Path | None
    generation: int = 0  # bumped by every change; a check runs for the newest
    checked_generation: int = -1  # the generation the last check read
    pending: int = 0  # checks scheduled or running
    analysis: Analysis | None = None
    tested: ExercisedBlocks | None = None
    tests_stale: bool = True  # rerun the tests beside it (W0308) after the next check
    published: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    updated: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Current:
    """A document and the check that read its current text."""

    analysis: Analysis
    module: A.Module
    index: LineIndex


class PolicyLanguageServer(LanguageServer):
    def __init__(self, check_delay: float = CHECK_DELAY, fresh_timeout: float = FRESH_TIMEOUT) -> None:
        super().__init__("policyctl", _version(), text_document_sync_kind=T.TextDocumentSyncKind.Incremental)
        self.check_delay = check_delay
        self.fresh_timeout = fresh_timeout
        self.folders: dict[str, Folder] = {}
        # One worker: checks queue behind each other instead of competing for the GIL.
        self.checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-check")
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ documents
    @property
    def encoding(self) -> str:
        enc = self.workspace.position_encoding
        value = getattr(enc, "value", enc)
        return value if value in (UTF8, UTF16, UTF32) else UTF16

    def doc_key(self, uri: str) -> str:
        """How a check names the document: its resolved path, or the URI of a buffer."""
        path = _fs_path(uri)
        return str(path.resolve()) if path is not None else uri

    def folder_of(self, uri: str) -> Folder:
        path = _fs_path(uri)
        if path is None:
            root, key = None, uri
        else:
            root = policy_root(path, self._workspace_roots())
            key = str(root)
        folder = self.folders.get(key)
        if folder is None:
            folder = self.folders[key] = Folder(key, root)
        return folder

    def _workspace_roots(self) -> list[Path]:
        uris = [f.uri for f in self.workspace.folders.values()]
        if self.workspace.root_uri:
            uris.append(self.workspace.root_uri)
        return [p for p in map(_fs_path, uris) if p is not None]

    def _open_in(self, folder: Folder) -> dict[str, tuple[str, int | None]]:
        """URI -> (text, version) of the open policy documents of a folder."""
        out = {}
        for uri, doc in self.workspace.text_documents.items():
            if self.folder_of(uri) is folder and (folder.root is None or uri.endswith(POLICY_SUFFIX)):
                out[uri] = (doc.source, doc.version)
        return out

    def uri_for(self, name: str, opened: dict[str, str] | None = None) -> str:
        """The URI of a file named in a span, as the editor spells it when it has it
        open (`opened`: doc key -> URI, when the caller has it at hand)."""
        path = Path(name)
        if not path.is_absolute():
            return name  # a buffer's URI
        if opened is None:
            opened = self.opened()
        resolved = str(path.resolve())
        return opened.get(resolved) or Path(resolved).as_uri()

    def opened(self) -> dict[str, str]:
        return {self.doc_key(uri): uri for uri in self.workspace.text_documents}

    # --------------------------------------------------------------- checks
    def schedule(self, folder: Folder, delay: float | None = None) -> None:
        folder.generation += 1
        folder.pending += 1
        task = asyncio.ensure_future(self._check_later(folder, folder.generation, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_later(self, folder: Folder, generation: int, delay: float | None) -> None:
        try:
            await asyncio.sleep(self.check_delay if delay is None else delay)
            if generation != folder.generation:
                return  # a newer edit: its own check follows
            async with folder.lock:
                if generation != folder.generation:
                    return
                await self._check(folder, generation)
        finally:
            folder.pending -= 1
        if folder.tests_stale and folder.root is not None and self.folders.get(folder.key) is folder:
            await self._rerun_tests(folder)

    async def _check(self, folder: Folder, generation: int) -> None:
        docs = self._open_in(folder)
        self.window_log_message(T.LogMessageParams(T.MessageType.Log, f"checking {folder.key}"))
        loop = asyncio.get_running_loop()
        try:
            if folder.root is None:
                text = docs.get(folder.key, ("", None))[0]
                analysis = await loop.run_in_executor(self.checks, analyze_buffer, folder.key, text)
            else:
                overlay = {Path(self.doc_key(uri)): text for uri, (text, _) in docs.items()}
                analysis = await loop.run_in_executor(self.checks, analyze_folder, folder.root, overlay, folder.tested)
        except Exception:  # a bug in a check must not take the editor's server down
            log.exception("check of %s failed", folder.key)
            self.window_log_message(T.LogMessageParams(T.MessageType.Error, f"check of {folder.key} failed"))
            return
        folder.analysis, folder.checked_generation = analysis, generation
        if self.folders.get(folder.key) is folder:  # still open
            self._publish(folder, analysis, {uri: version for uri, (_, version) in docs.items()})
        folder.updated.set()
        folder.updated = asyncio.Event()

    async def _rerun_tests(self, folder: Folder) -> None:
        """W0308 needs the tests beside the policy run (from disk): after opening and
        saving, not on every key stroke. A changed outcome rechecks the folder."""
        folder.tests_stale = False
        assert folder.root is not None
        loop = asyncio.get_running_loop()
        try:
            tested = await loop.run_in_executor(self.checks, tested_names, [folder.root])
        except Exception:
            log.exception("tests beside %s failed to run", folder.key)
            return
        if tested != folder.tested:
            folder.tested = tested
            self.schedule(folder, delay=0)

    def _publish(self, folder: Folder, analysis: Analysis, versions: dict[str, int | None]) -> None:
        """Diagnostics for every file of the folder, each open one marked with the
        version of its text that was checked."""
        enc, opened = self.encoding, self.opened()
        by_uri: dict[str, list[T.Diagnostic]] = {self.uri_for(k, opened): [] for k in analysis.modules}
        fallback = next(iter(by_uri), folder.key)
        for d in analysis.diagnostics:
            uri = self.uri_for(d.filename, opened) if d.span is not None or d.file else fallback
            by_uri.setdefault(uri, []).append(to_lsp(d, enc))
        for uri in folder.published - by_uri.keys():
            self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, []))
        for uri, diags in by_uri.items():
            self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, diags, versions.get(uri)))
        folder.published = set(by_uri)

    def forget(self, folder: Folder) -> None:
        """The last document of a folder closed: clear what was published for it."""
        for uri in folder.published:
            self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, []))
        self.folders.pop(folder.key, None)

    async def current(self, uri: str) -> Current | None:
        """The check of the text the editor holds now, waiting for it if one is due."""
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            return None
        folder, key, text = self.folder_of(uri), self.doc_key(uri), normalise(doc.source)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fresh_timeout
        while True:
            a = folder.analysis
            if a is not None and a.is_current(key, text):
                module = a.module(key)
                return Current(a, module, LineIndex(text)) if module is not None else None
            if folder.pending == 0:
                if folder.checked_generation == folder.generation and a is not None:
                    return None  # checked the newest text and this file is not part of it
                self.schedule(folder, delay=0)
            try:
                await asyncio.wait_for(folder.updated.wait(), deadline - loop.time())
            except TimeoutError:
                return None


def to_lsp(d: Diagnostic, encoding: str) -> T.Diagnostic:
    """Our diagnostic as LSP's: the same code and span; the hint follows the message;
    a "did you mean" replacement rides in `data` for the quick fix."""
    fix = features.replacement(d)
    return T.Diagnostic(
        range=span_range(d.span, encoding),
        message=d.message + (f"\nhelp: {d.hint}" if d.hint else ""),
        severity=T.DiagnosticSeverity.Error if d.severity is Severity.ERROR else T.DiagnosticSeverity.Warning,
        code=d.code,
        source="policyctl",
        data={"replacement": fix} if fix is not None else None,
    )


def _fs_path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def _version() -> str:
    try:
        return metadata.version("policy-engine")
    except metadata.PackageNotFoundError:
        return "0"


# ------------------------------------------------------------------ features


def create_server(check_delay: float = CHECK_DELAY, fresh_timeout: float = FRESH_TIMEOUT) -> PolicyLanguageServer:
    ls = PolicyLanguageServer(check_delay, fresh_timeout)

    @ls.feature(T.SHUTDOWN)
    def shutdown(ls: PolicyLanguageServer, params: None) -> None:
        ls.checks.shutdown(wait=False, cancel_futures=True)  # queued checks are moot; exit soon

    @ls.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PolicyLanguageServer, params: T.DidOpenTextDocumentParams) -> None:
        ls.schedule(ls.folder_of(params.text_document.uri), delay=0)

    @ls.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PolicyLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
        ls.schedule(ls.folder_of(params.text_document.uri))

    @ls.feature(T.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PolicyLanguageServer, params: T.DidSaveTextDocumentParams) -> None:
        folder = ls.folder_of(params.text_document.uri)
        folder.tests_stale = True
        ls.schedule(folder, delay=0)

    @ls.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PolicyLanguageServer, params: T.DidCloseTextDocumentParams) -> None:
        folder = ls.folder_of(params.text_document.uri)
        if ls._open_in(folder):
            ls.schedule(folder, delay=0)  # the file on disk replaces the closed buffer
        else:
            ls.forget(folder)

    @ls.feature(T.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_files(ls: PolicyLanguageServer, params: T.DidChangeWatchedFilesParams) -> None:
        paths = [p.resolve() for p in (_fs_path(c.uri) for c in params.changes) if p is not None]
        for folder in list(ls.folders.values()):
            if folder.root is not None and any(folder.root in p.parents for p in paths):
                folder.tests_stale = True
                ls.schedule(folder)

    @ls.feature(T.TEXT_DOCUMENT_HOVER)
    async def hover(ls: PolicyLanguageServer, params: T.HoverParams) -> T.Hover | None:
        cur = await ls.current(params.text_document.uri)
        if cur is None:
            return None
        h = features.hover(cur.analysis, cur.module, cur.index.offset(params.position, ls.encoding))
        if h is None:
            return None
        return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, h.text), span_range(h.span, ls.encoding))

    @ls.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=TRIGGERS))
    def completion(ls: PolicyLanguageServer, params: T.CompletionParams) -> T.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        index = LineIndex(doc.source)
        folder = ls.folder_of(params.text_document.uri)
        items = features.completion(index.text, index.offset(params.position, ls.encoding), folder.analysis)
        return T.CompletionList(
            False,
            [
                T.CompletionItem(
                    i.label,
                    kind=i.kind,
                    detail=i.detail,
                    documentation=T.MarkupContent(T.MarkupKind.Markdown, i.doc) if i.doc else None,
                )
                for i in items
            ],
        )

    @ls.feature(T.TEXT_DOCUMENT_DEFINITION)
    async def definition(ls: PolicyLanguageServer, params: T.DefinitionParams) -> list[T.Location] | None:
        cur = await ls.current(params.text_document.uri)
        if cur is None:
            return None
        spans = features.definition(cur.analysis, cur.module, cur.index.offset(params.position, ls.encoding))
        return [_location(ls, s) for s in spans] or None

    @ls.feature(T.TEXT_DOCUMENT_REFERENCES)
    async def references(ls: PolicyLanguageServer, params: T.ReferenceParams) -> list[T.Location] | None:
        cur = await ls.current(params.text_document.uri)
        if cur is None:
            return None
        offset = cur.index.offset(params.position, ls.encoding)
        spans = features.references(cur.analysis, cur.module, offset, params.context.include_declaration)
        return [_location(ls, s) for s in spans] or None

    @ls.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbols(
        ls: PolicyLanguageServer, params: T.DocumentSymbolParams
    ) -> list[T.DocumentSymbol] | None:
        cur = await ls.current(params.text_document.uri)
        if cur is None:
            return None
        enc = ls.encoding
        return [
            T.DocumentSymbol(s.name, s.kind, span_range(s.span, enc), span_range(s.name_span, enc), detail=s.detail)
            for s in features.symbols(cur.module)
        ]

    @ls.feature(T.TEXT_DOCUMENT_SIGNATURE_HELP, T.SignatureHelpOptions(trigger_characters=["(", ","]))
    def signature_help(ls: PolicyLanguageServer, params: T.SignatureHelpParams) -> T.SignatureHelp | None:
        index = LineIndex(ls.workspace.get_text_document(params.text_document.uri).source)
        found = features.signature_at(index.text, index.offset(params.position, ls.encoding))
        if found is None:
            return None
        f, arg = found
        params_info = [T.ParameterInformation(span) for span in features.parameter_offsets(f)]
        sig = T.SignatureInformation(features.signature(f), T.MarkupContent(T.MarkupKind.Markdown, f.doc), params_info)
        return T.SignatureHelp([sig], active_signature=0, active_parameter=min(arg, max(0, len(f.params) - 1)))

    @ls.feature(T.TEXT_DOCUMENT_FORMATTING)
    async def formatting(ls: PolicyLanguageServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        text = doc.source
        try:
            new = await asyncio.get_running_loop().run_in_executor(None, format_source, text, doc.uri)
        except PolicyError:
            return None  # syntax errors: the diagnostics say where
        if new == text:
            return []
        return [T.TextEdit(whole_document(text, ls.encoding), new)]

    @ls.feature(T.TEXT_DOCUMENT_CODE_ACTION, T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
    async def code_action(ls: PolicyLanguageServer, params: T.CodeActionParams) -> list[T.CodeAction] | None:
        uri = params.text_document.uri
        actions = [a for d in params.context.diagnostics if (a := _replace_action(uri, d)) is not None]
        # Quick fixes that edit the block around the diagnostic: (title, edits) by code.
        block_fixes = [d for d in params.context.diagnostics if d.code in ("E0211", "W0312")]
        cur = await ls.current(uri) if block_fixes else None
        for d in block_fixes if cur is not None else []:
            assert cur is not None
            offset = cur.index.offset(d.range.start, ls.encoding)
            if d.code == "E0211":
                title, edits = "Join the `unless` clauses with `or`", features.join_unless(cur.module, offset)
            else:
                hint = _hint(d) or ""
                title = "Guard the key: " + hint.removeprefix("guard it: ")
                edits = features.guard_null_key(cur.module, offset, hint)
            if edits:
                text_edits = [T.TextEdit(cur.index.range(e.start, e.end, ls.encoding), e.text) for e in edits]
                change = T.WorkspaceEdit(changes={uri: text_edits})
                actions.append(
                    T.CodeAction(title, kind=T.CodeActionKind.QuickFix, diagnostics=[d], edit=change, is_preferred=True)
                )
        return actions or None

    return ls


def _hint(d: T.Diagnostic) -> str | None:
    """The hint a published diagnostic carries after its message."""
    _, sep, hint = d.message.partition("\nhelp: ")
    return hint if sep else None


def _replace_action(uri: str, d: T.Diagnostic) -> T.CodeAction | None:
    data: Any = d.data
    new = data.get("replacement") if isinstance(data, dict) else None
    if not isinstance(new, str):
        return None
    return T.CodeAction(
        f"Replace with `{new}`",
        kind=T.CodeActionKind.QuickFix,
        diagnostics=[d],
        edit=T.WorkspaceEdit(changes={uri: [T.TextEdit(d.range, new)]}),
        is_preferred=True,
    )


def _location(ls: PolicyLanguageServer, span: A.Span) -> T.Location:
    return T.Location(ls.uri_for(span.source.name), span_range(span, ls.encoding))
