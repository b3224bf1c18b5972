"""A Lambda Function URL played on 127.0.0.1: HTTP requests in, payload-2.0 events to a handler,
its response back as HTTP. Lets a browser (or curl) use the preference pages locally.

Loopback only. Connections are served in threads (browsers open idle spare connections that
would block a single-threaded server), but the function runs one request at a time: the
handlers share one process-wide dependency switch."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_REQUEST_BYTES = 1024 * 1024  # Function URLs accept 6 MB; nothing here needs more than a form

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def function_url_event(method: str, target: str, headers: dict[str, str], body: bytes, host: str,
                       source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """The event a Function URL hands its function for one request (payload format 2.0)."""
    parts = urlsplit(target)
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value  # as Lambda joins repeats
    text_body = None
    is_base64 = False
    if body:
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "anonymous", "apiId": "local", "domainName": host, "domainPrefix": "local",
            "http": {"method": method, "path": parts.path or "/", "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = query
    if text_body is not None:
        event["body"] = text_body
    return event


def _handler_class(invoke: Invoke) -> type[BaseHTTPRequestHandler]:
    one_at_a_time = threading.Lock()

    class FunctionUrlRequest(BaseHTTPRequestHandler):
        server_version = "fidelio-local-function-url"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.send_error(413, "request too large")
                return
            body = self.rfile.read(length) if length else b""
            event = function_url_event(self.command, self.path, dict(self.headers.items()), body,
                                       self.headers.get("Host", ""), self.client_address[0])
            try:
                with one_at_a_time:
                    response = invoke(event)
            except Exception as error:  # what Lambda answers when the function raises
                self.send_error(502, f"function error: {type(error).__name__}")
                return
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else str(payload).encode()
            self.send_response(int(response.get("statusCode", 200)))
            for name, value in (response.get("headers") or {}).items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and `local up` print their own
            pass

    return FunctionUrlRequest


@contextmanager
def serve_function_url(invoke: Invoke, port: int = 0) -> Iterator[str]:
    """Serve `invoke` on http://127.0.0.1:PORT (a free port by default); yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(invoke))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="function-url", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

