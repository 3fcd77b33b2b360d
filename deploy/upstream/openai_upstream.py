"""A small OpenAI-compatible model server for the gateway tests and benchmarks.

    python deploy/upstream/openai_upstream.py --port 8000

`POST /v1/chat/completions` (also `/v1/completions`) answers a chat completion
whose completion is exactly `max_tokens` tokens long (default 16, capped by
`--max-completion-tokens`) and whose prompt is ceil(characters / 4) tokens. The
real usage is in the JSON `usage` block and, for a stock Envoy to carry it to
the engine's access-log service, in `x-usage-prompt-tokens`,
`x-usage-completion-tokens`, `x-usage-total-tokens`, `x-usage-cached-input-tokens`,
`x-usage-reasoning-tokens` and `x-usage-model` response headers (half the prompt is
reported as read from cache, a quarter of the completion as reasoning)
(`--no-usage-headers` leaves them out, like most model servers).

`GET /stats` returns `{"requests": N, "last_headers": {...}}`: how many model
calls arrived and the headers of the last one, so that tests can check what
reached the model and what did not. `POST /stats/reset` sets it back to zero.
`GET /healthz` answers 200.

Standard library only, so it runs anywhere the engine runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_PATHS = ("/v1/chat/completions", "/v1/completions")
MAX_BODY = 8 << 20


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.last_headers: dict[str, str] = {}

    def record(self, headers: dict[str, str]) -> int:
        with self.lock:
            self.requests += 1
            self.last_headers = headers
            return self.requests

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "last_headers": dict(self.last_headers)}

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.last_headers = {}


def prompt_text(body: dict[str, Any]) -> str:
    """The text a tokenizer would see: message contents (strings or text parts) or `prompt`."""
    parts: list[str] = []
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    if isinstance(body.get("prompt"), str):
        parts.append(body["prompt"])
    return "\n".join(parts)


def completion(body: dict[str, Any], max_completion: int) -> tuple[dict[str, Any], int, int]:
    requested = body.get("max_tokens") or body.get("max_completion_tokens") or 16
    if not isinstance(requested, int) or requested < 1:
        raise ValueError("max_tokens must be a positive integer")
    completion_tokens = min(requested, max_completion)
    prompt_tokens = math.ceil(len(prompt_text(body)) / 4)
    text = " ".join(["token"] * completion_tokens)
    answer = {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "test-model",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": text}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            # OpenAI's parts of those totals: half the prompt from cache, a quarter spent reasoning
            "prompt_tokens_details": {"cached_tokens": prompt_tokens // 2},
            "completion_tokens_details": {"reasoning_tokens": completion_tokens // 4},
        },
    }
    return answer, prompt_tokens, completion_tokens


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's connection pool expects
    server: UpstreamServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            raise ValueError(f"body of {length} bytes is over {MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._send(200, self.server.stats.snapshot())
        elif self.path == "/healthz":
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": {"message": f"no route for GET {self.path}"}})

    def do_POST(self) -> None:
        try:
            raw = self._read_body()
        except ValueError as e:
            self._send(413, {"error": {"message": str(e)}})
            return
        if self.path == "/stats/reset":
            self.server.stats.reset()
            self._send(200, {"ok": True})
            return
        if self.path.split("?", 1)[0] not in MODEL_PATHS:
            self._send(404, {"error": {"message": f"no route for POST {self.path}"}})
            return
        self.server.stats.record({k.lower(): v for k, v in self.headers.items()})
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            answer, pt, ct = completion(body, self.server.max_completion)
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            self._send(400, {"error": {"type": "invalid_request_error", "message": str(e)}})
            return
        headers = {}
        if rid := self.headers.get("x-request-id"):
            headers["x-request-id"] = rid
        if self.server.usage_headers:
            headers.update(
                {
                    "x-usage-prompt-tokens": str(pt),
                    "x-usage-completion-tokens": str(ct),
                    "x-usage-total-tokens": str(pt + ct),
                    "x-usage-cached-input-tokens": str(pt // 2),
                    "x-usage-reasoning-tokens": str(ct // 4),
                    "x-usage-model": str(answer["model"]),
                }
            )
        self._send(200, answer, headers)


class UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], *, usage_headers: bool = True, max_completion: int = 4096, verbose: bool = False
    ) -> None:
        super().__init__(address, Handler)
        self.stats = Stats()
        self.usage_headers = usage_headers
        self.max_completion = max_completion
        self.verbose = verbose


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--no-usage-headers", action="store_true", help="usage in the JSON body only")
    ap.add_argument("--max-completion-tokens", type=int, default=4096)
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)
    server = UpstreamServer(
        (args.host, args.port),
        usage_headers=not args.no_usage_headers,
        max_completion=args.max_completion_tokens,
        verbose=args.verbose,
    )
    print(f"upstream listening on {args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
