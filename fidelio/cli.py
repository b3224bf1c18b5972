"""`fidelio`: publish events, run the local AWS stand-in, load offers, import real data,
generate schemas, run the demo. Bad arguments get one line saying what is wrong."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fidelio.errors import UsageError

STATE_FILE = Path(os.environ.get("FIDELIO_LOCAL_STATE", ".fidelio/local.json"))
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


# --- helpers ------------------------------------------------------------------------------


def _local_stack() -> Any:
    from fidelio.local.stack import DUMMY_CREDENTIALS, REGION, LocalStack

    for key, value in {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(key, value)  # the stand-in's fake credentials, for pynamodb too

    if not STATE_FILE.exists():
        raise UsageError(f"the local stack is not running ({STATE_FILE} missing): run `fidelio local up` first")
    return LocalStack.from_json(STATE_FILE.read_text())


def read_events(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Events from a file: one {"detail-type", "detail"} object, a list of them, or JSON lines."""
    from functions.domain.events import InvalidEvent, parse_event, to_detail

    if not path.exists():
        raise UsageError(f"{path}: no such file")
    text = path.read_text()
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except ValueError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as error:
            raise UsageError(f"{path}: neither JSON nor JSON lines ({error})") from error
    events, problems = [], []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or "detail-type" not in item or "detail" not in item:
            problems.append(f"event {number}: needs 'detail-type' and 'detail'")
            continue
        try:
            parsed = parse_event(item["detail-type"], item["detail"])
            events.append((item["detail-type"], to_detail(parsed)))
        except InvalidEvent as error:
            problems.append(f"event {number}: {error.reason}")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UsageError(f"{path}: {len(problems)} invalid event(s), nothing published: "
                         + "; ".join(problems[:3]) + more)
    return events


# --- commands -----------------------------------------------------------------------------


def cmd_publish(args: argparse.Namespace) -> int:
    import boto3

    events = read_events(Path(args.file))
    if args.aws:
        client, bus = boto3.client("events"), args.bus or "fidelio"
    else:
        stack = _local_stack()
        client, bus = stack.client("events"), args.bus or stack.names.bus
    published = 0
    for start in range(0, len(events), 10):
        entries = [{"EventBusName": bus, "Source": args.source, "DetailType": t, "Detail": json.dumps(d)}
                   for t, d in events[start : start + 10]]
        response = client.put_events(Entries=entries)
        if response.get("FailedEntryCount"):
            raise UsageError(f"the bus refused {response['FailedEntryCount']} event(s): "
                             f"{[e.get('ErrorMessage') for e in response['Entries'] if e.get('ErrorCode')]}")
        published += len(entries)
    print(f"published {published} event(s) to bus {bus}")
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    if args.action == "up":
        if STATE_FILE.exists():
            print(f"already running: {json.loads(STATE_FILE.read_text())['endpoint']}")
            return 0
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        log = open(STATE_FILE.with_suffix(".log"), "w")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen([sys.executable, "-m", "fidelio.local.daemon", str(STATE_FILE)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        STATE_FILE.with_suffix(".pid").write_text(str(process.pid))
        for _ in range(300):
            if STATE_FILE.exists():
                print(f"local AWS stand-in up at {json.loads(STATE_FILE.read_text())['endpoint']} "
                      f"(pid {process.pid}); `fidelio local down` stops it")
                return 0
            if process.poll() is not None:
                raise UsageError(f"the local stand-in exited; see {STATE_FILE.with_suffix('.log')}")
            time.sleep(0.1)
        raise UsageError("the local stand-in did not start within 30 s")
    if args.action == "down":
        pid_file = STATE_FILE.with_suffix(".pid")
        if not pid_file.exists():
            print("not running")
            return 0
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not STATE_FILE.exists():
                break
            time.sleep(0.1)
        STATE_FILE.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        print("local AWS stand-in stopped")
        return 0
    if args.action == "pump":
        from fidelio.closed_loop import quiet_local_functions
        from fidelio.local.runner import LocalRunner

        quiet_local_functions()
        runner = LocalRunner(_local_stack())
        stats = runner.pump()
        print(f"processed {sum(stats.records.values())} record(s): {dict(stats.records)}; "
              f"schedules fired: {stats.schedules_fired}")
        return 0
    if not STATE_FILE.exists():
        print("not running")
        return 1
    stack = _local_stack()
    depths = {}
    sqs = stack.client("sqs")
    for name, url in {**stack.queue_urls, **{f"{k}-dlq": v for k, v in stack.dlq_urls.items()}}.items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        depths[name] = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    print(f"running at {stack.endpoint}; queue depths: {json.dumps(depths)}")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from functions.domain.events import json_schemas

    schemas = json_schemas()
    out = Path(args.dir)
    if args.action == "write":
        out.mkdir(parents=True, exist_ok=True)
        for name, schema in schemas.items():
            (out / f"{name}.v1.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        print(f"wrote {len(schemas)} schemas to {out}")
        return 0
    stale = [n for n, s in schemas.items()
             if not (out / f"{n}.v1.json").exists()
             or json.loads((out / f"{n}.v1.json").read_text()) != json.loads(json.dumps(s))]
    if stale:
        print(f"schemas out of date: {', '.join(stale)}; run `fidelio schemas write`")
        return 1
    print(f"{len(schemas)} schemas up to date")
    return 0


def load_offer_file(path: Path) -> list[Any]:
    import yaml
    from pydantic import ValidationError

    from functions.domain.offers import Offer

    if not path.exists():
        raise UsageError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    rows = data.get("offers") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise UsageError(f"{path}: expected a top-level 'offers:' list")
    offers, problems, seen = [], [], set()
    for number, row in enumerate(rows, 1):
        try:
            offer = Offer.model_validate(row)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            name = row.get("offer_id", "?") if isinstance(row, dict) else "?"
            problems.append(f"offer {number} ({name}): {where}: {first['msg']}")
            continue
        if offer.offer_id in seen:
            problems.append(f"offer {number}: duplicate offer_id {offer.offer_id}")
        seen.add(offer.offer_id)
        offers.append(offer)
    if problems:
        raise UsageError(f"{path}: {len(problems)} bad offer(s), nothing loaded: " + "; ".join(problems[:3]))
    return offers


def cmd_offers(args: argparse.Namespace) -> int:
    from fidelio.local.stack import LocalStack
    from functions.dal.offers import replace_catalog
    from functions.dal.tables import bind_tables
    from functions.settings import settings_from_env

    offers = load_offer_file(Path(args.file))
    if args.action == "validate":
        print(f"{len(offers)} offers valid")
        return 0
    stack: LocalStack = _local_stack()
    bind_tables(settings_from_env(stack.function_env("decide")))
    version = replace_catalog(offers)
    print(f"loaded {len(offers)} offers (catalog version {version})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    module = {"cdnow": "fidelio.importers.cdnow", "completejourney": "fidelio.importers.completejourney"}
    import importlib

    return int(importlib.import_module(module[args.dataset]).run(args))


def cmd_dlq(args: argparse.Namespace) -> int:
    from fidelio import dead_letters

    stack = _local_stack()
    if args.action == "list":
        for queue, reasons in dead_letters.list_dead_letters(stack).items():
            total = sum(reasons.values())
            detail = "; ".join(f"{n} × {r}" for r, n in reasons.most_common(5))
            print(f"{queue}-dlq: {total}" + (f" ({detail})" if detail else ""))
        return 0
    if not args.queue:
        raise UsageError(f"`fidelio dlq {args.action}` needs a QUEUE (ingest, decide, dispatch, feedback)")
    if args.action == "show":
        for item in dead_letters.show_dead_letters(stack, args.queue):
            print(json.dumps(item))
        return 0
    moved = dead_letters.redrive(stack, args.queue)
    print(f"moved {moved} message(s) from {args.queue}-dlq back to {args.queue}")
    return 0


def _check_member_id(member_id: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.:@\-]{1,128}", member_id):
        raise UsageError(f"member id {member_id[:40]!r} is malformed: 1-128 of A-Z a-z 0-9 _ . : @ -")
    return member_id


def cmd_privacy(args: argparse.Namespace) -> int:
    from functions import clock
    from functions.dal.clients import AwsClients
    from functions.dal.privacy import (
        PrivacyStores,
        erase_member,
        export_member,
        model_dirs_near,
        privacy_salt,
        reapply_erasures,
    )
    from functions.dal.tables import bind_tables
    from functions.domain.privacy import PrivacyRequestError
    from functions.settings import settings_from_env

    if args.action == "reapply":
        member_id = ""
    elif args.member is None:
        raise UsageError(f"`fidelio privacy {args.action}` needs a MEMBER id")
    else:
        member_id = _check_member_id(args.member)
    if args.action == "erase" and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to erase {member_id} without --yes (stdin is not a terminal to confirm on)")
        typed = input(f"Erase member {member_id} from every store? This cannot be undone. Type the id to confirm: ")
        if typed.strip() != member_id:
            raise UsageError("not confirmed: nothing was erased")
    stack = _local_stack()
    settings = settings_from_env(stack.function_env("privacy"))
    bind_tables(settings)
    clients = AwsClients(settings)
    stores = PrivacyStores(settings=settings, s3=clients.s3, scheduler=clients.scheduler,
                           dynamodb=clients.client("dynamodb"), salt=privacy_salt(settings, clients),
                           model_dirs=model_dirs_near(settings.model_dir))
    if args.action == "reapply":
        again = reapply_erasures(stores, clock.now())
        print(f"{len(again)} erased member(s) found again in the tables and erased again")
        return 0
    if args.action == "export":
        text = json.dumps(export_member(member_id, stores, clock.now()), indent=1)
        if args.out:
            Path(args.out).write_text(text + "\n")
            print(f"exported member {member_id} to {args.out}")
        else:
            print(text)
        return 0
    try:
        receipt = erase_member(member_id, args.reason, stores, clock.now())
    except PrivacyRequestError as error:
        raise UsageError(str(error)) from error
    print(json.dumps(receipt.model_dump(mode="json"), indent=1))
    return 0


def cmd_lifecycle(args: argparse.Namespace) -> int:
    from fidelio import lifecycle_cli

    return lifecycle_cli.run(args, _local_stack(), STATE_FILE.parent)


def cmd_demo(args: argparse.Namespace) -> int:
    from fidelio.demo import run_demo

    return run_demo(args)


# --- parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"fidelio: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fidelio", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("publish", help="publish events from a JSON file to the bus")
    p.add_argument("file")
    p.add_argument("--bus", default=None)
    p.add_argument("--source", default="fidelio.cli")
    p.add_argument("--aws", action="store_true", help="publish to AWS (default: the local stand-in)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("local", help="the local AWS stand-in (moto on 127.0.0.1)")
    p.add_argument("action", choices=["up", "down", "status", "pump"],
                   help="pump: run the handlers over every queue until they are empty")
    p.set_defaults(func=cmd_local)

    p = sub.add_parser("schemas", help="JSON Schemas of the event contract")
    p.add_argument("action", choices=["write", "check"])
    p.add_argument("--dir", default=str(SCHEMA_DIR))
    p.set_defaults(func=cmd_schemas)

    p = sub.add_parser("offers", help="validate or load an offer catalog (YAML)")
    p.add_argument("action", choices=["load", "validate"])
    p.add_argument("file")
    p.set_defaults(func=cmd_offers)

    p = sub.add_parser("import", help="convert a public dataset into Fidelio events")
    isub = p.add_subparsers(dest="dataset", required=True, parser_class=_Parser)
    for name in ("cdnow", "completejourney"):
        ip = isub.add_parser(name)
        try:
            import importlib

            importlib.import_module(f"fidelio.importers.{name}").configure(ip)
        except (ImportError, AttributeError):
            ip.add_argument("--source-dir", default=None)
        ip.set_defaults(func=cmd_import)

    p = sub.add_parser("dlq", help="inspect dead letters and replay them after a fix")
    p.add_argument("action", choices=["list", "show", "redrive"])
    p.add_argument("queue", nargs="?", default=None)
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("privacy", help="GDPR: export everything held on a member, or erase them")
    p.add_argument("action", choices=["export", "erase", "reapply"],
                   help="reapply: erase again the erased members a backup restore brought back")
    p.add_argument("member", nargs="?", default=None, help="the member id (export, erase)")
    p.add_argument("--out", default=None, help="export: write the JSON to this file (default: stdout)")
    p.add_argument("--yes", action="store_true", help="erase: do not ask for confirmation")
    p.add_argument("--reason", default="member request (GDPR Art. 17)",
                   help="erase: kept in the receipt; must not identify the member")
    p.set_defaults(func=cmd_privacy)

    from fidelio.lifecycle_cli import configure as configure_lifecycle

    configure_lifecycle(sub, cmd_lifecycle)  # train, evaluate, promote, rollout, rollback, models

    p = sub.add_parser("demo", help="run the main job end to end on the local stand-in")
    from fidelio.demo import configure as configure_demo

    configure_demo(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"fidelio: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
