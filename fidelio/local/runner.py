"""Plays the parts of AWS that moto does not run: the SQS → Lambda event source mapping
(poll, invoke the real handler in-process with genuine SQS records and a Lambda context,
honour batchItemFailures, let the redrive policy move poison messages to the DLQ),
EventBridge Scheduler (fire due one-time schedules, then delete them) and direct invocation
of functions without a queue (the offers API's Function URL)."""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fidelio.local.stack import ACCOUNT, REGION, LocalStack
from functions import clock
from functions.dal.clients import AwsClients
from functions.dal.schedules import InvalidSchedule, parse_at
from functions.handlers import deps as deps_module
from functions.settings import settings_from_env
from infra import spec

_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def cron_moments(expression: str, start: datetime, end: datetime) -> list[datetime]:
    """UTC moments in [start, end) of an EventBridge `cron(M H * * ? *)` or
    `cron(M H ? * DAY *)` expression (the forms Fidelio's schedules use)."""
    fields = expression.removeprefix("cron(").removesuffix(")").split()
    if len(fields) != 6 or not fields[0].isdigit() or not fields[1].isdigit() or fields[2] not in {"*", "?"} \
            or fields[3] != "*" or fields[5] != "*" or not (fields[4] in {"*", "?"} or fields[4] in _DAYS):
        raise ValueError(f"unsupported schedule expression for the local runner: {expression!r}")
    minute, hour = int(fields[0]), int(fields[1])
    moments = []
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        moment = day.replace(hour=hour, minute=minute)
        if start <= moment < end and (fields[4] in {"*", "?"} or _DAYS[moment.weekday()] == fields[4]):
            moments.append(moment)
        day += timedelta(days=1)
    return moments


def _source_of(body: str) -> str:
    try:
        envelope = json.loads(body)
        return str(envelope.get("source", "?")) if isinstance(envelope, dict) else "?"
    except ValueError:
        return "?"


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class RunnerStats:
    invocations: Counter = field(default_factory=Counter)
    records: Counter = field(default_factory=Counter)
    failed_records: Counter = field(default_factory=Counter)
    # (function, event source) of every record delivered, for the accounting identity
    sources: Counter = field(default_factory=Counter)
    schedules_fired: int = 0


class LocalRunner:
    def __init__(self, stack: LocalStack, batch_size: int = 10):
        self.stack = stack
        self.batch_size = batch_size
        self.sqs = stack.client("sqs")
        self.scheduler = stack.client("scheduler")
        self.stats = RunnerStats()
        self._handlers: dict[str, Any] = {}
        self._deps: dict[str, deps_module.Dependencies] = {}
        shared_env = stack.function_env("ingest")
        for key, value in shared_env.items():
            if key.startswith("AWS_") or key.startswith("POWERTOOLS_"):
                os.environ[key] = value
        clients: AwsClients | None = None
        for fn in spec.FUNCTIONS:
            settings = settings_from_env(stack.function_env(fn.logical_name))
            clients = clients or AwsClients(settings)
            self._deps[fn.logical_name] = deps_module.Dependencies(settings=settings, clients=clients)
        self._functions = [fn for fn in spec.FUNCTIONS if fn.queue]
        # schedule name -> (due, target arn, input, delete after) — a one-time schedule never changes
        self._schedules: dict[str, tuple[Any, str, str, bool] | None] = {}
        # Called with (function, messages) after each batch: lets a caller observe the flow.
        self.on_records: Callable[[str, list[dict[str, Any]]], None] | None = None
        # Queues that may hold messages since they were last found empty: what the handlers'
        # clients put on a queue, the bus, SES or SNS marks them (see _watch); pump polls only
        # those, and every queue at its start (callers act between pumps).
        self._queues = {fn.queue for fn in self._functions if fn.queue}
        self._dirty: set[str] = set(self._queues)
        if clients is not None:
            self._watch(clients)

    def _watch(self, clients: AwsClients) -> None:
        """Hooks on the handlers' botocore session: which calls can put messages on a queue
        (SQS directly; the bus, SES and SNS through rules and subscriptions), and the one-time
        schedules handlers create and delete, as EventBridge Scheduler itself learns them."""
        by_url = {url: name for name, url in self.stack.queue_urls.items()}

        def to_queue(params: dict[str, Any], **_: Any) -> None:
            queue = by_url.get(params.get("QueueUrl", ""))
            self._dirty.update({queue} if queue else self._queues)

        def to_any(**_: Any) -> None:
            self._dirty.update(self._queues)

        def creating(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["fidelio_schedule"] = params

        def created(http_response: Any, context: dict[str, Any], **_: Any) -> None:
            params = context.get("fidelio_schedule") or {}
            if http_response.status_code >= 300 or "Name" not in params:
                return  # not created: nothing to fire
            try:
                due = parse_at(params["ScheduleExpression"], params.get("ScheduleExpressionTimezone", "UTC"))
            except (InvalidSchedule, KeyError):
                self._schedules[params["Name"]] = None
                return
            target = params.get("Target", {})
            self._schedules[params["Name"]] = (due, target.get("Arn", ""), target.get("Input", "{}"),
                                               params.get("ActionAfterCompletion", "NONE") == "DELETE")

        def deleted(params: dict[str, Any], **_: Any) -> None:
            self._schedules.pop(params.get("Name", ""), None)

        hooks = {"sqs.SendMessage": to_queue, "sqs.SendMessageBatch": to_queue,
                 "sqs.ChangeMessageVisibility": to_queue, "sqs.ChangeMessageVisibilityBatch": to_queue,
                 "events.PutEvents": to_any, "sesv2.SendEmail": to_any, "ses.SendEmail": to_any,
                 "ses.SendRawEmail": to_any, "sns.Publish": to_any, "sns.PublishBatch": to_any,
                 "scheduler.CreateSchedule": creating, "scheduler.DeleteSchedule": deleted}
        for operation, hook in hooks.items():
            clients.session.register(f"before-parameter-build.{operation}", hook)
        clients.session.register("after-call.scheduler.CreateSchedule", created)

    def update_settings(self, function: str, **changes: Any) -> None:
        """Change one function's settings (as a redeploy or a config change would)."""
        current = self._deps[function]
        self._deps[function] = deps_module.Dependencies(
            settings=current.settings.model_copy(update=changes), clients=current.clients)

    def _handler(self, fn: spec.FunctionSpec) -> Any:
        if fn.logical_name not in self._handlers:
            deps_module.use(self._deps[fn.logical_name])
            module_name, attribute = fn.handler.rsplit(".", 1)
            self._handlers[fn.logical_name] = getattr(importlib.import_module(module_name), attribute)
        return self._handlers[fn.logical_name]

    def _record(self, message: dict[str, Any], queue: str) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {k: str(v) for k, v in message.get("Attributes", {}).items()},
            "messageAttributes": {
                k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType", "String"),
                    "stringListValues": [], "binaryListValues": []}
                for k, v in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.stack.queue_arns[queue],
            "awsRegion": REGION,
        }

    def poll_once(self, fn: spec.FunctionSpec) -> int:
        """Receive one batch from the function's queue and invoke it. Returns records seen."""
        assert fn.queue
        url = self.stack.queue_urls[fn.queue]
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=self.batch_size,
                                            AttributeNames=["All"], MessageAttributeNames=["All"],
                                            WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m, fn.queue) for m in messages]}
        for message in messages:
            self.stats.sources[(fn.logical_name, _source_of(message["Body"]))] += 1
        handler = self._handler(fn)
        deps_module.use(self._deps[fn.logical_name])
        self.stats.invocations[fn.logical_name] += 1
        self.stats.records[fn.logical_name] += len(messages)
        try:
            response = handler(event, LambdaContext(fn.logical_name, fn.memory_mb)) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in messages}  # the whole batch is retried
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        self.stats.failed_records[fn.logical_name] += len(retry)
        if done:
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        if retry:  # visible again at once: the redrive policy counts the receives
            self._dirty.add(fn.queue)
            self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(retry)])
        if self.on_records is not None:
            self.on_records(fn.logical_name, messages)
        return len(messages)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke a function synchronously, as its Function URL would (queue-less functions)."""
        fn = next(f for f in spec.FUNCTIONS if f.logical_name == function)
        handler = self._handler(fn)
        deps_module.use(self._deps[function])
        self.stats.invocations[function] += 1
        return handler(event, LambdaContext(function, fn.memory_mb))

    def fire_due_schedules(self, list_group: bool = True) -> int:
        """Fire every one-time schedule whose time has come (by the current clock). With
        `list_group` False, only the schedules already known or seen being created are looked
        at (no ListSchedules/GetSchedule: pump lists once, then relies on the hooks)."""
        now = clock.now()
        fired = 0
        group = self.stack.names.schedule_group
        arn_to_url = {arn: self.stack.queue_urls[name] for name, arn in self.stack.queue_arns.items()}
        if not list_group:  # the hooks saw what the handlers made
            names = list(self._schedules)
        else:
            names = []
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"GroupName": group}
                if token:
                    kwargs["NextToken"] = token
                page = self.scheduler.list_schedules(**kwargs)
                names.extend(s["Name"] for s in page.get("Schedules", []))
                token = page.get("NextToken")
                if not token:
                    break
            for gone in set(self._schedules) - set(names):  # deleted by a handler (an erasure, say)
                del self._schedules[gone]
        for name in names:
            if name not in self._schedules:
                schedule = self.scheduler.get_schedule(Name=name, GroupName=group)
                try:
                    due = parse_at(schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone", "UTC"))
                except InvalidSchedule:
                    self._schedules[name] = None
                    continue
                target = schedule["Target"]
                self._schedules[name] = (due, target["Arn"], target.get("Input", "{}"),
                                         schedule.get("ActionAfterCompletion", "NONE") == "DELETE")
            cached = self._schedules[name]
            if cached is None or cached[0] > now:
                continue
            _, arn, body, delete = cached
            self.sqs.send_message(QueueUrl=arn_to_url[arn], MessageBody=body)
            self._dirty.add(next(name for name, a in self.stack.queue_arns.items() if a == arn))
            if delete:
                self.scheduler.delete_schedule(Name=name, GroupName=group)
                del self._schedules[name]
            fired += 1
        self.stats.schedules_fired += fired
        return fired

    def fire_sweeps(self, start: datetime, end: datetime) -> int:
        """Play the scheduled sweep rules (spec.SWEEP_SCHEDULES) due in [start, end): put the
        same message the rule's target puts on decide's queue."""
        fired = 0
        for sweep, expression in spec.SWEEP_SCHEDULES:
            for moment in cron_moments(expression, start, end):
                body = {"detail-type": "sweep.requested", "source": spec.EVENT_SOURCE, "detail": {
                    "event_id": f"sweep-{sweep}-{moment.strftime('%Y%m%dT%H%M')}",
                    "occurred_at": moment.isoformat(), "schema_version": 1, "sweep": sweep}}
                self.sqs.send_message(QueueUrl=self.stack.queue_urls["decide"], MessageBody=json.dumps(body))
                fired += 1
        return fired

    def fire_scheduled_functions(self, start: datetime, end: datetime) -> dict[str, list[Any]]:
        """Play the schedule rules of spec.FUNCTION_SCHEDULES (drift monitor, batch scoring) due
        in [start, end): invoke each function, with the clock at its scheduled moment."""
        results: dict[str, list[Any]] = {}
        for function, expression in spec.FUNCTION_SCHEDULES:
            for moment in cron_moments(expression, start, end):
                clock.set_clock(lambda moment=moment: moment)
                results.setdefault(function, []).append(self.invoke(function, {"source": "aws.events"}))
        return results

    def pump(self, max_rounds: int = 10_000, fire_schedules: bool = True) -> RunnerStats:
        """Run until every queue is empty (and no due schedule is left). Each pump starts by
        polling every queue and lists the schedule group once; after that a queue is polled
        only when something may have put a message on it (see _watch)."""
        self._dirty.update(self._queues)
        for round_ in range(max_rounds):
            seen = 0
            for fn in self._functions:
                if fn.queue not in self._dirty:
                    continue
                self._dirty.discard(fn.queue)
                while True:
                    got = self.poll_once(fn)
                    seen += got
                    if got == 0:
                        break
            if fire_schedules:
                seen += self.fire_due_schedules(list_group=round_ == 0)
            if seen == 0:
                break
        return self.stats

    def dead_letters(self) -> dict[str, list[dict[str, Any]]]:
        """Messages on every DLQ (left in place: received with a zero visibility timeout)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for queue, url in self.stack.dlq_urls.items():
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                MessageAttributeNames=["All"], VisibilityTimeout=0,
                                                WaitTimeSeconds=0).get("Messages", [])
            found[queue] = messages
        return found
