"""`python -m fidelio.local.moto_keepalive -H 127.0.0.1 -p PORT`: moto's own application (the
one `python -m moto.server` runs), served by waitress so connections are kept alive.

moto.server runs werkzeug's development server, which closes the connection after every
response (werkzeug 3 disables HTTP/1.1 keep-alive on purpose) and starts a thread per
connection: every AWS call of the closed loop opened a TCP connection, about a tenth of the
client's time. waitress keeps botocore's pooled connections open. Measured on this machine
(1,800 DynamoDB/SQS calls, CPU of client + server): 6.1 ms a call with moto.server, 5.3 with
this; 1,820 connections against 19.

One difference from moto.server: waitress drops request headers whose names contain an
underscore (werkzeug's handler is patched by moto to keep them for S3 user metadata). Fidelio
sends none."""

from __future__ import annotations

import argparse

from moto.moto_server.threaded_moto_server import DomainDispatcherApplication, create_backend_app
from waitress import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    app = DomainDispatcherApplication(create_backend_app)
    # channel_timeout: an idle pooled connection stays open for the length of a run.
    serve(app, host=args.host, port=args.port, threads=args.threads, channel_timeout=3600,
          connection_limit=1000, _quiet=True)


if __name__ == "__main__":
    main()
