"""`policyctl client` and `policyctl admin`: a running server from the command line.

    policyctl client check  [--request FILE|-] [--account ID ...] [--explain]   Check a request
    policyctl client report REQUEST_ID --prompt-tokens N --completion-tokens N  Report usage (also --cached-input-tokens,
                                                                                 --reasoning-tokens, --model)
    policyctl client status                                                     policy, reload, store, health
    policyctl admin state NAME KEY [--max N]                                    a key of a limit or measure
    policyctl admin reset NAME KEY                                              forget it
    policyctl admin dry-run [--request FILE|-] [--account ID ...]               decide, count nothing

Every command takes --server HOST:PORT, TLS (--tls-ca, and --tls-cert/--tls-key
for mutual TLS, --tls-server-name) and --json. Exit codes: 0 done (`status`:
healthy), 1 the server answered with an error or (`status`) is degraded or
unreachable, 2 bad input.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

import grpc
from policy_engine.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, err, read_input
from policy_engine.client import AdminClient, CheckResult, KeyStateResult, PolicyClient, PolicyInfo, TLSFiles
from policy_engine.client import channel as open_channel
from policy_engine.context import RequestContext, describe_validation_error
from policy_engine.decision import shown_number
from policy_engine.ingress.usage import Usage

client_app = typer.Typer(help="Talk to a running server: check, report, status.", no_args_is_help=True)
admin_app = typer.Typer(
    help="The admin service of a running server (serve --admin-port): state, reset, dry run.", no_args_is_help=True
)

DEFAULT_SERVER = "127.0.0.1:50051"
DEFAULT_ADMIN = "127.0.0.1:50052"
STORE_HEALTH = "policy_engine.store"  # server.app.STORE_HEALTH, without importing the server
HEALTH_NAMES = (
    "",
    "policyengine.v1.PolicyService",
    "envoy.service.auth.v3.Authorization",
    "envoy.service.ratelimit.v3.RateLimitService",
    "envoy.service.accesslog.v3.AccessLogService",
    STORE_HEALTH,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Conn:
    server: str
    tls: TLSFiles | None
    timeout: float
    as_json: bool


def _conn(
    server: str,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_server_name: str | None,
    timeout: float,
    as_json: bool,
) -> Conn:
    if (tls_cert is None) != (tls_key is None):
        err("error: mutual TLS needs both --tls-cert and --tls-key")
        raise typer.Exit(EXIT_USAGE)
    for p in (tls_ca, tls_cert, tls_key):
        if p is not None and not p.is_file():
            err(f"error: {p}: no such file")
            raise typer.Exit(EXIT_USAGE)
    tls = TLSFiles(tls_ca, tls_cert, tls_key, tls_server_name) if (tls_ca or tls_cert or tls_server_name) else None
    return Conn(server, tls, timeout, as_json)


# --- option groups: options several commands take, built into one value -------------------


@dataclass(frozen=True)
class OptionGroup:
    """Options that become one parameter (`param`) of a command: `build` takes them by name."""

    param: str
    options: tuple[inspect.Parameter, ...]
    build: Callable[..., Any]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _uses(*groups: OptionGroup) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the options of each group in place of the group's parameter.

    Typer reads a command's options from its signature, so the wrapper shows the
    command's own parameters followed by the groups' options, and calls the command
    with each group built from its options.
    """

    def wrap(command: Callable[..., None]) -> Callable[..., None]:
        built = {g.param for g in groups}
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name not in built]
        options = [o for g in groups for o in g.options]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            for g in groups:
                kwargs[g.param] = g.build(**{o.name: kwargs.pop(o.name) for o in g.options})
            command(**kwargs)

        del run.__wrapped__  # typer must read the signature below, not the command's
        run.__signature__ = inspect.Signature([*own, *options])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in (*own, *options)}
        return run

    return wrap


def _connection(default_server: str, server_help: str) -> OptionGroup:
    """--server, TLS, --timeout and --json: every command's connection."""
    return OptionGroup(
        "conn",
        (
            _option(
                "server",
                Annotated[str, typer.Option("--server", "-s", metavar="HOST:PORT", help=server_help)],
                default_server,
            ),
            _option(
                "tls_ca",
                Annotated[Path | None, typer.Option("--tls-ca", help="CA of the server's certificate (PEM): TLS")],
                None,
            ),
            _option(
                "tls_cert",
                Annotated[Path | None, typer.Option("--tls-cert", help="client certificate (PEM): mutual TLS")],
                None,
            ),
            _option(
                "tls_key", Annotated[Path | None, typer.Option("--tls-key", help="client key (PEM): mutual TLS")], None
            ),
            _option(
                "tls_server_name",
                Annotated[str | None, typer.Option("--tls-server-name", help="name to verify in the certificate")],
                None,
            ),
            _option("timeout", Annotated[float, typer.Option("--timeout", help="seconds per call")], 5.0),
            _option("as_json", Annotated[bool, typer.Option("--json", help="print JSON")], False),
        ),
        _conn,
    )


SERVER = _connection(DEFAULT_SERVER, "the server's address")
ADMIN_SERVER = _connection(DEFAULT_ADMIN, "the admin service's address (serve --admin-port)")


@contextmanager
def _rpc(conn: Conn, what: str) -> Iterator[None]:
    """gRPC errors as one line and exit code 1 (INVALID_ARGUMENT: 2)."""
    try:
        yield
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else None
        name = code.name if code is not None else "error"
        err(f"error: {what} on {conn.server}: {name}: {e.details() if hasattr(e, 'details') else e}")
        raise typer.Exit(EXIT_USAGE if code is grpc.StatusCode.INVALID_ARGUMENT else EXIT_FAIL) from None
    except (OSError, ValueError) as e:  # unreadable PEM files, a bad pair
        err(f"error: {e}")
        raise typer.Exit(EXIT_USAGE) from None


# --- the request context: a file and/or flags -------------------------------------------

# Flags that set one field of the request context, over the file's value.
CONTEXT_FLAGS: tuple[tuple[str, str, type], ...] = (
    ("account", "account.id", str),
    ("api_key", "api_key.id", str),
    ("model", "request.model", str),
    ("prompt", "request.prompt", str),
    ("max_tokens", "request.max_tokens", int),
    ("request_id", "request.id", str),
    ("client_ip", "client.ip", str),
)


def _context(request: str | None, attribute: list[str] | None, **flags: Any) -> RequestContext:
    data: dict[str, Any] = json.loads(read_input(request)) if request else {}
    if not isinstance(data, dict):
        err("error: the request context is a JSON object")
        raise typer.Exit(EXIT_USAGE)
    for name, path, _ in CONTEXT_FLAGS:
        if flags[name] is not None:
            section, field = path.split(".")
            data.setdefault(section, {})[field] = flags[name]
    for item in attribute or ():
        key, eq, value = item.partition("=")
        if not eq or not key:
            err(f"error: --attribute {item!r}: expected KEY=VALUE, e.g. account.risk_score=0.9")
            raise typer.Exit(EXIT_USAGE)
        if not isinstance(data.get("attributes"), dict):
            data["attributes"] = {}
        data["attributes"][key] = value  # text, as a header sends it: the serving policy types it
    try:
        return RequestContext.model_validate(data)
    except ValidationError as e:
        err("error: invalid request context\n" + describe_validation_error(e))
        raise typer.Exit(EXIT_USAGE) from None


def _flag_help(path: str) -> str:
    return path + (" (to report usage against)" if path == "request.id" else "")


REQUEST_CONTEXT = OptionGroup(
    "ctx",
    (
        _option(
            "request",
            Annotated[str | None, typer.Option("--request", "-r", help="request context JSON file, or - for stdin")],
            None,
        ),
        *(
            _option(
                name, Annotated[kind | None, typer.Option("--" + name.replace("_", "-"), help=_flag_help(path))], None
            )
            for name, path, kind in CONTEXT_FLAGS
        ),
        _option(
            "attribute",
            Annotated[
                list[str] | None,
                typer.Option("--attribute", help="a declared attribute, KEY=VALUE (repeatable; the policy types it)"),
            ],
            None,
        ),
    ),
    _context,
)


# --- printing -----------------------------------------------------------------------------


def _num(v: float | None) -> str:
    return "-" if v is None else str(shown_number(v))  # money to the micro-unit, as decisions show it


def _seconds(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}s" if v >= 10 or float(v).is_integer() else f"{v:.1f}s"


def _rows(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in rows)


def show_check(r: CheckResult, dry_run: bool = False) -> str:
    head = f"{r.effect} {r.http_status}" + (f"  {r.reason}" if r.reason else "")
    if r.rule_ids:
        head += f"  ({', '.join(r.rule_ids)})"
    rows = [("decision", head + ("  [dry run: nothing counted]" if dry_run else ""))]
    if r.request_id:
        rows.append(("request id", r.request_id))
    rows.append(("policy", r.policy_version))
    if r.flags:
        rows.append(("flags", ", ".join(r.flags)))
    for i, (k, v) in enumerate(sorted(r.headers.items())):
        rows.append(("headers" if i == 0 else "", f"{k}: {v}"))
    for i, lim in enumerate(r.limits):
        state = " OVER" if lim.over else ""
        if lim.error:  # nothing is known of its usage
            text = f"{lim.limit_id} [{lim.key}] max {_num(lim.max)}: STORE FAILED ({lim.error}), " + (
                "failed closed" if lim.over else "failed open"
            )
        else:
            text = (
                f"{lim.limit_id} [{lim.key}] used {_num(lim.used)} of {_num(lim.max)}, "
                f"{_num(lim.remaining)} left, reset {_seconds(lim.reset_seconds)}{state}"
            )
        rows.append(("limits" if i == 0 else "", text))
    for i, m in enumerate(r.measures):
        value = "null (" + (m.error or "") + ")" if m.value is None else _num(m.value)
        rows.append(
            (
                "measures" if i == 0 else "",
                f"{m.measure_id} [{m.key}] = {value}" + (" (charged)" if m.charged else " (read)"),
            )
        )
    for i, note in enumerate(r.notes):
        rows.append(("notes" if i == 0 else "", note))
    for i, s in enumerate(r.shadow_matches):
        rows.append(
            (
                "shadow" if i == 0 else "",
                f"{s['rule_id']} would {s['effect']}" + (f": {s['reason']}" if s["reason"] else ""),
            )
        )
    if r.explanation:
        matched = [e["rule"] for e in r.explanation if "rule" in e and e.get("matched")]
        rows.append(("rules matched", ", ".join(matched) or "none"))
    return _rows(rows)


def show_state(st: KeyStateResult) -> str:
    rows = [(st.block, f"{st.name} ({st.kind}, window {_seconds(st.window_seconds)})"), ("key", st.key)]
    if st.max is None:
        rows.append(
            ("used", _num(st.used) + ("" if st.block == "measure" else "  (max depends on the request: give --max)"))
        )
    else:
        rows.append(
            (
                "used",
                f"{_num(st.used)} of {_num(st.max)}, {_num(st.remaining)} left"
                + ("  FULL: one more would be over" if st.full else ""),
            )
        )
        rows.append(("next fits", "now" if not st.reset_seconds else f"in {_seconds(st.reset_seconds)}"))
    rows.append(("clear", "now (nothing counted)" if not st.clear_seconds else f"in {_seconds(st.clear_seconds)}"))
    rows.append(("policy", st.policy_version))
    return _rows(rows)


def _emit(conn: Conn, value: Any, text: Callable[[], str]) -> None:
    typer.echo(json.dumps(value, indent=2, default=str) if conn.as_json else text())


# --- policyctl client ---------------------------------------------------------------------


@client_app.command("check", short_help="Check one request against the server's policy.")
@_uses(REQUEST_CONTEXT, SERVER)
def check_cmd(
    conn: Conn,
    ctx: RequestContext,
    explain: Annotated[bool, typer.Option("--explain", help="ask for the trace of every rule and limit")] = False,
) -> None:
    """Check one request (a JSON file and/or flags) against the server: it counts, as a real request does."""
    with _rpc(conn, "Check"), PolicyClient(conn.server, timeout=conn.timeout, tls=conn.tls) as pe:
        r = pe.check(ctx, explain=explain)
    _emit(conn, asdict(r), lambda: show_check(r))
    raise typer.Exit(EXIT_OK)


@client_app.command("report", short_help="Report a request's real token usage.")
@_uses(SERVER)
def report_cmd(
    conn: Conn,
    request_id: Annotated[str, typer.Argument(help="the request id the Check answered with")],
    prompt_tokens: Annotated[int | None, typer.Option("--prompt-tokens", min=0)] = None,
    completion_tokens: Annotated[int | None, typer.Option("--completion-tokens", min=0)] = None,
    cached_input_tokens: Annotated[
        int | None, typer.Option("--cached-input-tokens", min=0, help="of the prompt tokens, those read from cache")
    ] = None,
    reasoning_tokens: Annotated[
        int | None, typer.Option("--reasoning-tokens", min=0, help="of the completion tokens, those spent reasoning")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="the model that served the call (usage.model)")] = None,
) -> None:
    """Report a request's real usage, so that `sum` limits charged with an estimate are reconciled."""
    usage = Usage(prompt_tokens, completion_tokens, cached_input_tokens, reasoning_tokens, model)
    if not usage.known:
        err(
            "error: give at least one of --prompt-tokens, --completion-tokens, --cached-input-tokens, --reasoning-tokens"
        )
        raise typer.Exit(EXIT_USAGE)
    with _rpc(conn, "Report"), PolicyClient(conn.server, timeout=conn.timeout, tls=conn.tls) as pe:
        applied = pe.report(request_id, usage=usage)
    _emit(
        conn,
        {"request_id": request_id, "applied": applied},
        lambda: (
            f"{request_id}: reconciled"
            if applied
            else f"{request_id}: nothing to reconcile (unknown or expired request id, already reported, or no sum limit "
            "with a usage clause charged it)"
        ),
    )
    raise typer.Exit(EXIT_OK)


@client_app.command("status", short_help="The serving policy, reload errors, the limit store.")
@_uses(SERVER)
def status_cmd(
    conn: Conn,
) -> None:
    """The serving policy, the last reload error, the limit store and health. Exit 1 when degraded."""
    with _rpc(conn, "GetPolicy"), PolicyClient(conn.server, timeout=conn.timeout, tls=conn.tls) as pe:
        info = pe.get_policy()
    with _rpc(conn, "Health"):
        health = _health(conn)
    store_ok = info.store is None or info.store.state != "failing"
    healthy = health.get("") == "SERVING" and info.last_reload_error is None and store_ok
    _emit(
        conn,
        {"server": conn.server, "healthy": healthy, "policy": asdict(info), "health": health},
        lambda: show_status(conn.server, info, health),
    )
    raise typer.Exit(EXIT_OK if healthy else EXIT_FAIL)


def _health(conn: Conn) -> dict[str, str]:
    out: dict[str, str] = {}
    with open_channel(conn.server, conn.tls) as ch:
        stub: Any = health_pb2_grpc.HealthStub(ch)  # its methods are set in __init__, unseen by the stubs
        for name in HEALTH_NAMES:
            try:
                st = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=conn.timeout).status
                out[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(st)
            except grpc.RpcError as e:
                if e.code() is not grpc.StatusCode.NOT_FOUND:
                    raise
    return out


def show_status(server: str, info: PolicyInfo, health: dict[str, str]) -> str:
    loaded = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info.loaded_at)) if info.loaded_at else "-"
    rows = [
        ("server", f"{server}  {health.get('', '?')}"),
        (
            "policy",
            f"{info.version}, loaded {loaded}: {len(info.files)} files, {len(info.rule_ids)} rules, "
            f"{len(info.limit_ids)} limits, {len(info.measure_ids)} measures",
        ),
    ]
    if info.last_reload_error:
        lines = info.last_reload_error.splitlines()
        rows.append(("last reload", "REFUSED (the version above keeps serving):"))
        rows += [("", line) for line in lines]
    else:
        rows.append(("last reload", "ok"))
    st = info.store
    if st is not None:
        state = st.state.upper() if st.state == "failing" else st.state
        rows.append(("store", f"{st.backend} {st.url}  {state}"))
        if st.state == "failing":
            since = time.strftime("%H:%M:%S UTC", time.gmtime(st.failing_since)) if st.failing_since else "?"
            rows.append(("", f"since {since}: {st.last_error}; limits apply their fail mode"))
        rows.append(("", f"{st.errors} failed store calls, {st.outages} outages since start"))
    for i, (name, status) in enumerate(health.items()):
        rows.append(("health" if i == 0 else "", f"{name or '(server)'}  {status}"))
    return _rows(rows)


# --- policyctl admin ----------------------------------------------------------------------


@admin_app.command("state", short_help="A key's state for a limit or measure.")
@_uses(ADMIN_SERVER)
def state_cmd(
    conn: Conn,
    name: Annotated[str, typer.Argument(help="a limit or measure of the serving policy")],
    key: Annotated[str, typer.Argument(help="its key, as the policy renders it (parts joined by |)")],
    maximum: Annotated[
        float | None, typer.Option("--max", help="the max, for a limit whose max depends on the request")
    ] = None,
) -> None:
    """A key's state for a limit or measure: used, max, what is left, when one more fits. Writes nothing."""
    with _rpc(conn, "GetState"), AdminClient(conn.server, timeout=conn.timeout, tls=conn.tls) as admin:
        st = admin.get_state(name, key, maximum)
    _emit(conn, asdict(st), lambda: show_state(st))
    raise typer.Exit(EXIT_OK)


@admin_app.command("reset", short_help="Forget a key's state for a limit or measure.")
@_uses(ADMIN_SERVER)
def reset_cmd(
    conn: Conn,
    name: Annotated[str, typer.Argument(help="a limit or measure of the serving policy")],
    key: Annotated[str, typer.Argument(help="its key, as the policy renders it (parts joined by |)")],
) -> None:
    """Forget a key's state for a limit or measure: its window starts afresh (the server logs who did it)."""
    with _rpc(conn, "ResetState"), AdminClient(conn.server, timeout=conn.timeout, tls=conn.tls) as admin:
        existed, before = admin.reset_state(name, key)
    was = f"used {_num(before.used)}" + (f" of {_num(before.max)}" if before.max is not None else "")
    _emit(
        conn,
        {"existed": existed, "before": asdict(before)},
        lambda: f"reset {name} [{key}]: it had {was}" if existed else f"{name} [{key}]: nothing to reset",
    )
    raise typer.Exit(EXIT_OK)


@admin_app.command("dry-run", short_help="Decide and explain a request, nothing counted.")
@_uses(REQUEST_CONTEXT, ADMIN_SERVER)
def dry_run_cmd(
    conn: Conn,
    ctx: RequestContext,
) -> None:
    """Decide and explain a request against the live state without counting it."""
    with _rpc(conn, "DryRunCheck"), AdminClient(conn.server, timeout=conn.timeout, tls=conn.tls) as admin:
        r = admin.dry_run(ctx)
    _emit(conn, asdict(r), lambda: show_check(r, dry_run=True))
    raise typer.Exit(EXIT_OK)
