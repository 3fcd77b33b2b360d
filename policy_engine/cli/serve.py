"""`policyctl serve`: the gRPC server (our PolicyService, Envoy ext_authz, rate limit and access log)
and, with --http-port, HTTP forward-auth for nginx, Caddy and Traefik."""

from __future__ import annotations

from pathlib import Path

import typer

from dsl.diagnostics import PolicyError
from policy_engine.cli.common import EXIT_FAIL, EXIT_USAGE, RedisOption, StoreOption


def serve_cmd(
    policies: Path | None = typer.Option(
        None, "--policies", help="Policy folder (required here, in the environment or in --config)."
    ),
    port: int | None = typer.Option(None, "--port", help="gRPC port (default: 50051)"),
    host: str | None = typer.Option(None, "--host", help="Address to bind (default: 127.0.0.1)"),
    store: StoreOption = None,
    redis: RedisOption = None,
    store_sync: str | None = typer.Option(
        None,
        "--store-sync",
        metavar="MODE",
        help="exact (default) or batched:<N>ms: local-first limits on a shared store, deltas sent every N ms.",
    ),
    store_sync_limit: list[str] | None = typer.Option(
        None,
        "--store-sync-limit",
        metavar="NAME=MODE",
        help="One limit's or measure's sync, exact or batched (repeatable); sums stay exact unless named.",
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Server processes on one port (needs a shared --store)."
    ),
    http_port: int | None = typer.Option(
        None, "--http-port", help="HTTP forward-auth port for nginx, Caddy, Traefik (default: off)."
    ),
    http_host: str | None = typer.Option(None, "--http-host", help="Address the HTTP port binds (default: 127.0.0.1)."),
    usage_log: list[Path] | None = typer.Option(
        None, "--usage-log", help="A proxy's JSON access log to read usage reports from (repeatable)."
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Prometheus /metrics port (worker i: port + i) (default: off)"
    ),
    admin_port: int | None = typer.Option(
        None, "--admin-port", help="Serve the admin service (state, reset, dry run) on this port (default: off)."
    ),
    admin_host: str | None = typer.Option(
        None, "--admin-host", help="Address of the admin port (default: 127.0.0.1; another needs --tls-client-ca)."
    ),
    decision_log: str | None = typer.Option(
        None, "--decision-log", help="Decision log file (JSON lines; '-' for stdout)."
    ),
    decision_log_prompts: bool | None = typer.Option(
        None,
        "--decision-log-prompts/--no-decision-log-prompts",
        help="Log prompt text, not only its fingerprint and length.",
    ),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Server certificate (PEM)."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="Server private key (PEM)."),
    tls_client_ca: Path | None = typer.Option(None, "--tls-client-ca", help="CA for client certificates: mutual TLS."),
    reload: bool | None = typer.Option(
        None, "--reload/--no-reload", help="Watch the policy folder [default: on]; SIGHUP always reloads."
    ),
    store_deadline_ms: float | None = typer.Option(
        None, "--store-deadline-ms", help="Limit-store deadline per request (default: 50)"
    ),
    grace_seconds: float | None = typer.Option(None, "--grace-seconds", help="Drain time on SIGTERM (default: 10)"),
    log_level: str | None = typer.Option(None, "--log-level", help="debug|info|warning|error."),
    config: Path | None = typer.Option(
        None, "--config", help="TOML settings file (keys at the top level or in a server table)."
    ),
) -> None:
    """Serve decisions over gRPC (and HTTP forward-auth with --http-port). Flags > POLICY_ENGINE_* environment > --config file."""
    from policy_engine.server.app import ServerError, serve
    from policy_engine.server.settings import SettingsError, load_settings

    try:
        sync_limits = _sync_limits(store_sync_limit)
        settings = load_settings(
            config,
            policies=policies,
            port=port,
            host=host,
            store=store,
            redis=redis,
            store_sync=store_sync,
            store_sync_limits=sync_limits,
            workers=workers,
            http_port=http_port,
            http_host=http_host,
            usage_logs=usage_log or None,
            metrics_port=metrics_port,
            admin_port=admin_port,
            admin_host=admin_host,
            decision_log=decision_log,
            decision_log_prompts=decision_log_prompts,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_client_ca=tls_client_ca,
            reload=reload,
            store_deadline_ms=store_deadline_ms,
            grace_seconds=grace_seconds,
            log_level=log_level,
        )
    except SettingsError as e:
        typer.echo(f"policyctl serve: {e}", err=True)
        raise typer.Exit(EXIT_USAGE) from e
    try:
        code = serve(settings)
    except PolicyError as e:
        typer.echo(f"policyctl serve: the policy in {settings.policies} does not load:\n{e}", err=True)
        raise typer.Exit(EXIT_FAIL) from e
    except ServerError as e:
        typer.echo(f"policyctl serve: {e}", err=True)
        raise typer.Exit(EXIT_FAIL) from e
    raise typer.Exit(code)


def _sync_limits(given: list[str] | None) -> dict[str, str] | None:
    from policy_engine.server.settings import SettingsError

    if not given:
        return None
    out: dict[str, str] = {}
    for item in given:
        name, sep, mode = item.partition("=")
        if not sep or not name.strip():
            raise SettingsError(f"--store-sync-limit {item!r}: expected NAME=exact or NAME=batched")
        out[name.strip()] = mode.strip()
    return out
