"""Settings of `policyctl serve`: command-line flags > environment (`POLICY_ENGINE_*`) > TOML file.

    [server]                     # or the same keys at the top level of the file
    policies = "policies"
    port = 50051
    store = "redis://127.0.0.1:6379/0"   # `redis`, its former name, is still accepted
    store_sync = "batched:50ms"  # local-first limits (docs/limits.md); default "exact"
    store_sync_limits = {daily_tokens = "batched"}  # per limit: sums stay exact unless named
    metrics_port = 9464
    decision_log = "decisions.jsonl"
    http_port = 8181             # forward-auth for nginx, Caddy, Traefik (docs/gateways.md)
    usage_logs = ["access.json"] # proxies' JSON access logs carrying usage
    [server.envoy]               # EnvoyMappingSettings (docs/grpc.md)
    xff_num_trusted_hops = 1
    [server.http]                # HttpSettings: forward-auth reading
    xff_num_trusted_hops = 0

Nested values come from the environment with `__` between levels, e.g.
`POLICY_ENGINE_ENVOY__XFF_NUM_TRUSTED_HOPS=1`.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from policy_engine.ingress.settings import HeaderNames, IngressSettings
from policy_engine.ingress.usage import UsageHeaders
from policy_engine.server.envoy_mapping import EnvoyMappingSettings
from policy_engine.state.factory import StoreURLError, backend_of, check_sync, validate_url
from policy_engine.state.sync_mode import SyncMode, parse_interval, parse_sync

MiB = 1 << 20


class SettingsError(ValueError):
    """Settings that cannot work together, or a config file that cannot be read."""


class HttpSettings(IngressSettings):
    """`[server.http]`: how forward-auth calls are read. The ingress settings, with the
    defaults of a proxy in front: the client is the proxy's X-Forwarded-For entry, and
    the engine mints request ids."""

    trust_envoy_external_address: bool = False
    xff_num_trusted_hops: int | None = Field(default=0, ge=0)
    headers: HeaderNames = HeaderNames.model_validate({"request_id": None})
    # The original body, base64, from a proxy that cannot send it as the body (Caddy).
    body_header: str = "x-policy-body"
    # The largest header aiohttp accepts: bounds `body_header` (base64 is 4/3 of the body).
    max_header_bytes: int = Field(default=2 * MiB, ge=8190)
    # Reading, mapping and deciding one check; later: 503.
    deadline_ms: float = Field(default=1000.0, gt=0)


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICY_ENGINE_", env_nested_delimiter="__", extra="forbid")

    policies: Path
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = Field(default=50051, ge=0, le=65535)
    store: str | None = None  # limit store URL (policy_engine/state/factory.py); None: memory://
    redis: str | None = None  # the former name of `store`
    workers: int = Field(default=1, ge=1, le=256)
    # "exact": every limit decided on the shared store; "batched:50ms": local-first (docs/limits.md)
    store_sync: str = "exact"
    store_sync_limits: dict[str, Literal["exact", "batched"]] = Field(default_factory=dict)
    store_deadline_ms: float = Field(default=50.0, gt=0)
    store_probe_seconds: float = Field(default=5.0, ge=0)  # ask the store whether it answers (0: never)
    # Prometheus /metrics on its own port (None: off); worker i of N listens on metrics_port + i.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # The admin service (docs/operations.md) on its own port (None: off); loopback unless mutual TLS.
    admin_port: int | None = Field(default=None, ge=0, le=65535)
    admin_host: str = "127.0.0.1"
    # JSON lines; "-" is standard output. None: no decision log.
    decision_log: str | None = None
    decision_log_prompts: bool = False  # log prompt text (otherwise fingerprint and length only)
    decision_log_queue: int = Field(default=10_000, ge=1)
    # Decision logs off the box (server/log_shipping.py): batched, retried with back-off, bounded.
    decision_log_http: str | None = None  # POST newline-delimited JSON to this URL
    decision_log_otlp: str | None = None  # OTLP/gRPC logs endpoint, http://host:4317 (the otel extra)
    decision_log_batch: int = Field(default=500, ge=1)
    decision_log_ship_queue: int = Field(default=10_000, ge=1)  # per destination; beyond it records are dropped
    reload: bool = True  # watch the policy folder; SIGHUP always reloads
    reload_debounce_ms: int = Field(default=200, ge=1)
    grace_seconds: float = Field(default=10.0, ge=0)
    max_message_bytes: int = Field(default=4 * MiB, gt=0)
    max_concurrent_rpcs: int | None = Field(default=None, ge=1)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # require client certificates signed by this CA (mutual TLS)
    # Envoy access-log and proxy access-log usage paths: response headers that carry the real usage.
    usage_prompt_tokens_header: str = "x-usage-prompt-tokens"
    usage_completion_tokens_header: str = "x-usage-completion-tokens"
    usage_cached_input_tokens_header: str = "x-usage-cached-input-tokens"
    usage_reasoning_tokens_header: str = "x-usage-reasoning-tokens"
    usage_model_header: str = "x-usage-model"
    envoy: EnvoyMappingSettings = EnvoyMappingSettings()

    @property
    def usage_headers(self) -> UsageHeaders:
        return UsageHeaders(
            self.usage_prompt_tokens_header,
            self.usage_completion_tokens_header,
            self.usage_cached_input_tokens_header,
            self.usage_reasoning_tokens_header,
            self.usage_model_header,
        )

    # HTTP forward-auth for nginx, Caddy and Traefik (None: off); TLS as for gRPC.
    http_port: int | None = Field(default=None, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    http: HttpSettings = HttpSettings()
    # Proxies' JSON access logs to follow for usage reports (request id + x-usage-* headers).
    usage_logs: list[Path] = Field(default_factory=list)
    usage_log_poll_ms: int = Field(default=100, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # OpenTelemetry (the otel extra): spans exported over OTLP/gRPC to this endpoint (None: off).
    otlp_endpoint: str | None = None  # http://host:4317 (plaintext) or https://host:4317
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # traces that arrive unsampled by the caller
    service_name: str = "policy-engine"

    @field_validator("store", "redis")
    @classmethod
    def _store_url(cls, url: str | None) -> str | None:
        if url is not None:
            validate_url(url)  # a URL no store can open is an error here, before anything starts
        return url

    @field_validator("store_sync")
    @classmethod
    def _sync(cls, text: str) -> str:
        parse_interval(text)
        return text

    @field_validator("decision_log_http")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r}: expected an http:// or https:// URL")
        return url

    @field_validator("otlp_endpoint", "decision_log_otlp")
    @classmethod
    def _otlp(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r}: expected http://host:port (plaintext) or https://host:port (TLS)")
        from policy_engine.server.tracing import HAVE_OTEL, MISSING

        if not HAVE_OTEL:
            raise ValueError(MISSING)
        return url

    @model_validator(mode="after")
    def _consistent(self) -> ServerSettings:
        if self.redis is not None:
            if self.store is not None and self.store != self.redis:
                raise ValueError("give the store URL once: `redis` is the former name of `store`")
            self.store, self.redis = self.redis, None
        if self.workers > 1 and not backend_of(self.store).shared:
            raise ValueError(
                f"--workers {self.workers} needs --redis URL (or another shared --store): each worker is its "
                "own process and the in-memory store cannot be shared between processes, so limits would be "
                "counted separately per worker; run one worker, or give the workers a shared Redis"
            )
        try:
            check_sync(self.store, self.sync_mode)
        except StoreURLError as e:
            raise ValueError(str(e)) from None
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        if self.admin_port is not None and self.tls_client_ca is None and not _loopback(self.admin_host):
            raise ValueError(
                f"admin_host {self.admin_host}: the admin service binds loopback (127.0.0.1, ::1, localhost) "
                "unless the server requires client certificates (--tls-client-ca): it can reset limits"
            )
        return self

    @property
    def sync_mode(self) -> SyncMode:
        return parse_sync(self.store_sync, self.store_sync_limits)

    @property
    def address(self) -> str:
        return _address(self.host, self.port)

    @property
    def admin_address(self) -> str:
        return _address(self.admin_host, self.admin_port or 0)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _TomlSource(PydanticBaseSettingsSource):
    """The `[server]` table of a TOML file (or its top level), lowest priority."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise SettingsError(f"{path}: cannot read the config file: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: not valid TOML: {e}") from e
    section = data.get("server", data)
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: [server] must be a table")
    # Relative paths in the file are relative to the file, not to where the server starts.
    for key in ("policies", "tls_cert", "tls_key", "tls_client_ca", "decision_log"):
        value = section.get(key)
        if isinstance(value, str) and value != "-" and not Path(value).is_absolute():
            section[key] = str(path.parent / value)
    logs = section.get("usage_logs")
    if isinstance(logs, list):
        section["usage_logs"] = [
            str(path.parent / v) if isinstance(v, str) and not Path(v).is_absolute() else v for v in logs
        ]
    return section


def load_settings(config: Path | None = None, **flags: Any) -> ServerSettings:
    """Build the settings: flags (None means "not given") > environment > TOML `config`."""
    toml = read_toml(config) if config is not None else {}
    given = {k: v for k, v in flags.items() if v is not None}

    class _Loaded(ServerSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _TomlSource(settings_cls, toml)

    try:
        loaded = _Loaded(**given)
    except ValidationError as e:
        raise SettingsError(_describe(e, config)) from e
    # A plain ServerSettings (picklable, for worker processes), without re-reading any source.
    return ServerSettings.model_construct(**dict(loaded))


def _describe(err: ValidationError, config: Path | None) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "settings"
        msg = "unknown setting" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    suffix = f" (flags, POLICY_ENGINE_* environment, {config})" if config else ""
    return "invalid server settings" + suffix + ":\n  " + "\n  ".join(lines)
