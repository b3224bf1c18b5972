"""`python -m fidelio.local.moto_keepalive -H 127.0.0.1 -p PORT`: moto's own application (the
one `python -m moto.server` runs), served by waitress so connections are kept alive.

moto.server runs werkzeug's development server, which closes the connection after every
response (werkzeug 3 disables HTTP/1.1 keep-alive on purpose) and starts a thread per
connection: every AWS call of the closed loop opened a TCP connection, about a tenth of the
client's time. waitress keeps botocore's pooled connections open. Measured on this machine
(1,800 DynamoDB/SQS calls, CPU of client + server): 6.1 ms a call with moto.server, 5.3 with
this; 1,820 connections against 19.

Two pure computations moto repeats on every request are memoized here (same results, computed
once): the list of moto's service packages, which `get_backend_for_host` rebuilds with a
directory listing and a stat per entry for each request, and the JSONPath parser of EventBridge
target input paths, which moto rebuilds (a ply parser table) for every event and target. On a
150-member, 6-day demo the two were about a fifth of the server's time.

One difference from moto.server: waitress drops request headers whose names contain an
underscore (werkzeug's handler is patched by moto to keep them for S3 user metadata). Fidelio
sends none."""

from __future__ import annotations

import argparse
import functools

from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
from waitress import serve


def memoize_pure_lookups() -> None:
    """Cache what moto recomputes per request although it cannot change while serving."""
    import jsonpath_ng.ext
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    # moto.events.utils imports `parse` from jsonpath_ng.ext inside the call: the cached one
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    memoize_pure_lookups()
    app = DomainDispatcherApplication(create_backend_app)
    # channel_timeout: an idle pooled connection stays open for the length of a run.
    serve(app, host=args.host, port=args.port, threads=args.threads, channel_timeout=3600,
          connection_limit=1000, _quiet=True)


if __name__ == "__main__":
    main()
