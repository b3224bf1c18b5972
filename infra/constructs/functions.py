"""The Lambda functions of spec.FUNCTIONS: code, layers, environment, triggers (a queue, or
the offers API's Function URL) and one least-privilege role each, built from grants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ses as ses
from constructs import Construct

from functions.dal.privacy import ARCHIVE_PREFIXES, MODELS_PREFIX
from functions.settings import Settings, env_var, settings_from_env
from infra import bundle, constants, spec
from infra.constructs.acknowledgments import acknowledge, nag_resource
from infra.constructs.lifecycle_grants import LifecycleGrants
from infra.constructs.queues import WorkQueues
from infra.constructs.scheduling import SendScheduling

# What the privacy function rewrites (functions/dal/privacy.py) and where it reads model cards.
PRIVACY_WRITABLE_PREFIXES = (*ARCHIVE_PREFIXES, "privacy/")

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64

NON_RESOURCE_SETTINGS = constants.NON_RESOURCE_SETTINGS
SECRET_SETTINGS = constants.SECRET_SETTINGS
LINK_SIGNING_FUNCTIONS = constants.LINK_SIGNING_FUNCTIONS


@dataclass(frozen=True)
class LambdaAssets:
    """Directories written by `python -m infra.bundle` (or placeholders in tests)."""

    code_dir: Path
    core_layer_dir: Path  # holds python/: powertools (+X-Ray SDK), pydantic, pynamodb
    numpy_layer_dir: Path  # holds python/: numpy
    ml_layer_dir: Path  # holds python/: onnxruntime and its small dependencies

    @classmethod
    def from_build_dir(cls, build_dir: Path) -> LambdaAssets:
        return cls(
            code_dir=build_dir / constants.CODE_DIR,
            core_layer_dir=build_dir / constants.CORE_LAYER_DIR,
            numpy_layer_dir=build_dir / constants.NUMPY_LAYER_DIR,
            ml_layer_dir=build_dir / constants.ML_LAYER_DIR,
        )


@dataclass(frozen=True)
class FunctionResources:
    """What the functions read, write and call (created by the other constructs)."""

    key: kms.IKey
    tables: dict[str, dynamodb.TableV2]
    queues: WorkQueues
    bus: events.EventBus
    data_bucket: s3.Bucket
    scheduling: SendScheduling
    configuration_set: ses.IConfigurationSet
    sender_email: str
    unsubscribe_base_url: str
    log_level: str


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: spec.Names,
        assets: LambdaAssets,
        resources: FunctionResources,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self._resources = resources
        self.core_layer = lambda_.LayerVersion(
            self,
            "CoreLayer",
            code=lambda_.Code.from_asset(str(assets.core_layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="aws-lambda-powertools, aws-xray-sdk, pydantic, pynamodb "
            "(boto3 from the runtime)",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.numpy_layer = lambda_.LayerVersion(
            self,
            "NumpyLayer",
            code=lambda_.Code.from_asset(str(assets.numpy_layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="numpy, for the functions that score or do batch math",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.ml_layer = lambda_.LayerVersion(
            self,
            "MlLayer",
            code=lambda_.Code.from_asset(str(assets.ml_layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="onnxruntime for in-process model scoring",
            removal_policy=RemovalPolicy.DESTROY,
        )
        # HMAC key for the one-click unsubscribe links (RFC 8058) dispatch puts in every email.
        self.link_signing_secret = self._random_secret(
            "LinkSigningKey", "Fidelio: HMAC key signing unsubscribe and preference links", resources.key
        )
        acknowledge(
            self.link_signing_secret,
            "AwsSolutions-SMG4",
            "The key signs unsubscribe links that stay valid in members' inboxes for 60 days; "
            "a scheduled rotation would silently break every link already sent. It is rotated "
            "by hand (new secret value, then deploy) when that trade-off is acceptable or after "
            "a compromise, as docs/infrastructure.md describes.",
        )
        # Salt of member pseudonyms (GDPR erasure: suppression records, the erasure list, training
        # rows). Read by the functions that check erasures; the training export needs the same value.
        self.pseudonym_salt_secret = self._random_secret(
            "PseudonymSalt", "Fidelio: salt (HMAC key) of member pseudonyms; never rotate (docs/privacy.md)",
            resources.key,
        )
        acknowledge(
            self.pseudonym_salt_secret,
            "AwsSolutions-SMG4",
            "The salt keys the pseudonyms that remember erased members (suppression of replayed "
            "events, the erasure list the next training reads): a new value would forget every "
            "erasure, so it is never rotated; docs/privacy.md says what to do after a compromise.",
        )
        code = lambda_.Code.from_asset(str(assets.code_dir))
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for function_spec in spec.FUNCTIONS:
            self.functions[function_spec.logical_name] = self._function(function_spec, code)
        self._grant_ingest(self.functions["ingest"])
        self._grant_decide(self.functions["decide"])
        self._grant_dispatch(self.functions["dispatch"])
        self._grant_feedback(self.functions["feedback"])
        self._grant_offers_api(self.functions["offers_api"])
        self._grant_preferences(self.functions["preferences"])
        self._grant_privacy(self.functions["privacy"])
        # Serving config + registry (decide, offers_api), drift monitor, batch scoring, schedules.
        self.lifecycle = LifecycleGrants(self, "Lifecycle", names=names, functions=self.functions,
                                         roles=self.roles, resources=resources)
        for name in sorted(constants.PSEUDONYM_SALT_FUNCTIONS):
            self.pseudonym_salt_secret.grant_read(self.functions[name])
        # The app backend signs its requests (SigV4): only principals allowed both
        # lambda:InvokeFunctionUrl and lambda:InvokeFunction on this function get through.
        self.offers_api_url = self.functions["offers_api"].add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.AWS_IAM
        )
        # Members click unsubscribe / preference links from their inbox, and mailbox providers
        # POST the one-click unsubscribe (RFC 8058) without credentials: the URL is public and
        # the signed, expiring link token is the authentication (checked by the handler).
        self.preferences_url = self.functions["preferences"].add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE
        )
        if resources.unsubscribe_base_url == constants.DEFAULT_UNSUBSCRIBE_BASE_URL:
            # No public domain configured: links in emails point at the function URL itself.
            self.functions["dispatch"].add_environment(
                env_var("unsubscribe_base_url"), Fn.join("", [self.preferences_url.url, "unsubscribe"])
            )
        self._acknowledge_findings()

    # -- building blocks ------------------------------------------------------------------

    def _random_secret(self, construct_id: str, description: str, key: kms.IKey) -> secretsmanager.Secret:
        """A generated 64-character secret under the stack's key, kept when the stack goes."""
        return secretsmanager.Secret(
            self,
            construct_id,
            description=description,
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )

    def environment(self, function_spec: spec.FunctionSpec) -> dict[str, str]:
        """Every resource-naming Settings field, set from the real resource."""
        r = self._resources
        values: dict[str, str] = {
            env_var(f"{name}_table"): table.table_name for name, table in r.tables.items()
        }
        values |= {
            env_var("bus_name"): r.bus.event_bus_name,
            env_var("decide_queue_url"): r.queues["decide"].queue.queue_url,
            env_var("dispatch_queue_url"): r.queues["dispatch"].queue.queue_url,
            env_var("dispatch_queue_arn"): r.queues["dispatch"].queue.queue_arn,
            env_var("schedule_group"): r.scheduling.group.schedule_group_name,
            env_var("scheduler_role_arn"): r.scheduling.role.role_arn,
            env_var("ses_configuration_set"): r.configuration_set.configuration_set_name,
            env_var("sender_email"): r.sender_email,
            env_var("data_bucket"): r.data_bucket.bucket_name,
            env_var("unsubscribe_base_url"): r.unsubscribe_base_url,
            env_var("model_dir"): f"{constants.LAMBDA_TASK_ROOT}/model_artifacts/offers",
            env_var("churn_model_dir"): f"{constants.LAMBDA_TASK_ROOT}/model_artifacts/churn",
            env_var("serving_config_parameter"): self._names.serving_config_parameter,
            env_var("pipeline_name"): self._names.retraining_pipeline,
            env_var("dlq_url"): (r.queues[function_spec.queue].dlq.queue_url if function_spec.queue else ""),
            "POWERTOOLS_SERVICE_NAME": f"{self._names.prefix}-{function_spec.logical_name}",
            "POWERTOOLS_METRICS_NAMESPACE": constants.POWERTOOLS_METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": r.log_level,
        }
        if function_spec.logical_name in LINK_SIGNING_FUNCTIONS:
            # Only the secret's ARN: the keys are read at run time (and re-read every few
            # minutes, so a rotation needs no deploy) and never appear in the template or the
            # function's configuration.
            values[env_var("link_signing_secret")] = self.link_signing_secret.secret_arn
        if function_spec.logical_name in constants.PSEUDONYM_SALT_FUNCTIONS:
            values[env_var("pseudonym_salt_secret")] = self.pseudonym_salt_secret.secret_arn
        _check_covers_settings(values, secrets=frozenset(
            field for field in SECRET_SETTINGS if env_var(field) in values))
        return values

    def _function(self, function_spec: spec.FunctionSpec, code: lambda_.Code) -> lambda_.Function:
        name = function_spec.logical_name
        log_group = logs.LogGroup(
            self,
            f"{name}-logs",
            retention=logs.RetentionDays.ONE_MONTH,  # constants.LOG_RETENTION_DAYS
            encryption_key=self._resources.key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # An explicit role (no AWSLambdaBasicExecutionRole managed policy): logs go to the
        # one group above, everything else comes from the grants below.
        role = iam.Role(
            self,
            f"{name}-role",
            description=f"Fidelio {name} function",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group.grants.write(role)
        self.roles[name] = role
        by_dir = {
            constants.CORE_LAYER_DIR: self.core_layer,
            constants.NUMPY_LAYER_DIR: self.numpy_layer,
            constants.ML_LAYER_DIR: self.ml_layer,
        }
        layers: list[lambda_.ILayerVersion] = [by_dir[name] for name in bundle.layers_for(function_spec)]
        function = lambda_.Function(
            self,
            name,
            description=f"Fidelio {name}: {function_spec.handler}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=function_spec.handler,
            code=code,
            layers=layers,
            memory_size=function_spec.memory_mb,
            timeout=Duration.seconds(function_spec.timeout_s),
            reserved_concurrent_executions=function_spec.reserved_concurrency,
            environment=self.environment(function_spec),
            environment_encryption=self._resources.key,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
        )
        if function_spec.queue is not None:
            queue_spec = spec.queue_spec(function_spec.queue)
            # A permanently invalid record goes straight to the DLQ, with its reason.
            self._resources.queues[function_spec.queue].dlq.grants.send_messages(function)
            function.add_event_source(
                event_sources.SqsEventSource(
                    self._resources.queues[function_spec.queue].queue,
                    batch_size=queue_spec.batch_size,
                    max_batching_window=Duration.seconds(queue_spec.max_batching_window_s),
                    report_batch_item_failures=True,
                    # With reserved concurrency, cap the pollers at the same number:
                    # otherwise throttled batches count as receives and end up in the DLQ.
                    max_concurrency=(
                        max(2, function_spec.reserved_concurrency)
                        if function_spec.reserved_concurrency
                        else None
                    ),
                )
            )
        return function

    # -- least privilege, per function ------------------------------------------------------

    def _grant_ingest(self, function: lambda_.Function) -> None:
        r = self._resources
        r.tables["members"].grants.read_write_data(function)
        r.tables["idempotency"].grants.read_write_data(function)
        r.queues["decide"].queue.grants.send_messages(function)  # hands triggers to decide
        r.tables["ledger"].grants.write_data(function)  # appends consent history (conditional puts)
        r.tables["ledger"].grants.read_data(function)  # is a new member an erased one? (tombstone)
        # joins a conversion (offer.redeemed with a decision id) to its decision as an outcome
        iam.Grant.add_to_principal(grantee=function, actions=["dynamodb:UpdateItem"],
                                   resource_arns=[r.tables["decisions"].table_arn])

    def _grant_decide(self, function: lambda_.Function) -> None:
        r = self._resources
        r.tables["members"].grants.read_data(function)  # BatchGet, and Scan for sweeps
        r.tables["offers"].grants.read_data(function)
        r.tables["decisions"].grants.read_write_data(function)
        r.tables["ledger"].grants.read_write_data(function)
        r.queues["dispatch"].queue.grants.send_messages(function)  # send now
        self._grant_schedule_sends(function)  # send later
        r.data_bucket.grants.put(function, "decisions/*")  # the training archive

    def _grant_dispatch(self, function: lambda_.Function) -> None:
        r = self._resources
        stack = Stack.of(self)
        r.tables["members"].grants.read_data(function)
        r.tables["offers"].grants.read_data(function)  # renders the chosen offer
        r.tables["decisions"].grants.read_write_data(function)  # the send claim and status
        r.tables["ledger"].grants.read_write_data(function)
        sender_domain = r.sender_email.rsplit("@", 1)[-1]
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["ses:SendEmail", "ses:SendRawEmail"],
            resource_arns=[
                # The sender may be verified as an address or through its domain.
                stack.format_arn(service="ses", resource="identity", resource_name=r.sender_email),
                stack.format_arn(service="ses", resource="identity", resource_name=sender_domain),
                stack.format_arn(
                    service="ses",
                    resource="configuration-set",
                    resource_name=r.configuration_set.configuration_set_name,
                ),
            ],
        )
        # Mobile push to platform endpoints and SMS to phone numbers: an SMS publish has no
        # resource ARN, so IAM only accepts "*" for it (acknowledged in FidelioStack).
        iam.Grant.add_to_principal(grantee=function, actions=["sns:Publish"], resource_arns=["*"])
        # A send falling in quiet hours is moved to the next allowed time; a schedule whose
        # send was taken early is removed.
        self._grant_schedule_sends(function)
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["scheduler:DeleteSchedule"],
            resource_arns=[r.scheduling.schedule_arns()],
        )
        r.bus.grants.actions(function, ["events:PutEvents"])  # notification.sent, for fatigue counting
        self.link_signing_secret.grant_read(function)  # signs the unsubscribe links

    def _grant_feedback(self, function: lambda_.Function) -> None:
        r = self._resources
        r.tables["decisions"].grants.read_write_data(function)  # outcomes joined to decisions
        r.tables["ledger"].grants.read_write_data(function)
        r.bus.grants.actions(function, ["events:PutEvents"])  # notification.delivered/opened/...

    def _grant_offers_api(self, function: lambda_.Function) -> None:
        r = self._resources
        r.tables["members"].grants.read_data(function)  # the profile (never written here)
        r.tables["offers"].grants.read_data(function)  # Scan for the catalog
        r.tables["decisions"].grants.write_data(function)  # the placement, once per member and day

    def _grant_preferences(self, function: lambda_.Function) -> None:
        r = self._resources
        r.tables["members"].grants.read_write_data(function)  # applies the consent change at once
        r.tables["ledger"].grants.read_write_data(function)  # consent history, privacy requests
        r.bus.grants.actions(function, ["events:PutEvents"])  # consent.changed, privacy.requested
        self.link_signing_secret.grant_read(function)  # verifies link tokens

    def _grant_privacy(self, function: lambda_.Function) -> None:
        """Export reads a member everywhere; erasure deletes them everywhere (docs/privacy.md)."""
        r = self._resources
        for table in ("members", "decisions", "ledger", "idempotency"):
            r.tables[table].grants.read_write_data(function)
        # Archives and training exports are read and rewritten without the member's rows (old
        # versions deleted too); exports and the erasure list are written under privacy/; model
        # cards are only read (lineage). Named actions on named prefixes, not the bucket grants.
        bucket = r.data_bucket
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["s3:ListBucket", "s3:ListBucketVersions"],
            resource_arns=[bucket.bucket_arn],
        )
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                     "s3:DeleteObjectVersion"],
            resource_arns=[bucket.arn_for_objects(f"{prefix}*") for prefix in PRIVACY_WRITABLE_PREFIXES],
        )
        iam.Grant.add_to_principal(
            grantee=function, actions=["s3:GetObject"], resource_arns=[bucket.arn_for_objects(f"{MODELS_PREFIX}*")]
        )
        r.key.grant_encrypt_decrypt(function)  # the bucket's SSE-KMS key
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["scheduler:GetSchedule", "scheduler:DeleteSchedule"],  # the member's pending sends
            resource_arns=[r.scheduling.schedule_arns()],
        )

    def _grant_schedule_sends(self, function: lambda_.Function) -> None:
        """One-time schedules in Fidelio's group only, run as the scheduler role."""
        scheduling = self._resources.scheduling
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["scheduler:CreateSchedule"],
            resource_arns=[scheduling.schedule_arns()],
        )
        scheduling.role.grant_pass_role(function.grant_principal)

    # -- what cdk-nag flags, and why it stays ----------------------------------------------------

    def _acknowledge_findings(self) -> None:
        r = self._resources
        index_arns = nag_resource(self, f"{r.tables['decisions'].table_arn}/index/*")
        schedule_arns = nag_resource(self, r.scheduling.schedule_arns())
        archive_objects = nag_resource(self, f"{r.data_bucket.bucket_arn}/decisions/*")
        for name, role in self.roles.items():
            acknowledge(
                self.functions[name],
                "AwsSolutions-L1",
                "Python 3.13 on purpose: the layers (numpy, onnxruntime, pydantic-core wheels) "
                "and their precompiled bytecode are built for cp313 by infra/bundle.py; moving "
                "to a newer runtime is a deliberate rebuild-and-test, not a drift to follow.",
            )
            for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
                acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    f"{action} comes from CDK grants on SSE-KMS tables/queues/bucket and is "
                    "scoped to the one Fidelio key's ARN: the wildcard covers the variants of "
                    "that operation (e.g. WithoutPlaintext), never another key.",
                )
            acknowledge(
                role,
                "AwsSolutions-IAM5[Resource::*]",
                "Resource '*' here only carries xray:PutTraceSegments and "
                "xray:PutTelemetryRecords (active tracing), which have no resource-level "
                "permissions"
                + (
                    ", and sns:Publish: an SMS publish goes to a phone number, which has no "
                    "ARN, so IAM only accepts '*' for it; push endpoints are created per "
                    "member device and are not known at deploy time."
                    if name == "dispatch"
                    else "."
                ),
            )
            if name in ("decide", "dispatch", "feedback", "privacy"):
                acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Resource::{index_arns}]",
                    "Added by the read/write grant on the decisions table: its GSI "
                    "(by_member) is queried for a member's decision history; the wildcard is "
                    "limited to that one table's indexes.",
                )
            if name == "offers_api":
                acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Resource::{index_arns}]",
                    "Added by the write grant on the decisions table (CDK names the table's "
                    "indexes with it): offers_api only puts placement records, and DynamoDB "
                    "accepts no write on an index, so the wildcard grants nothing more; it is "
                    "limited to that one table's indexes.",
                )
            if name in ("decide", "dispatch", "privacy"):
                acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Resource::{schedule_arns}]",
                    "Schedules are created at run time, one per scheduled send, named after "
                    "the decision id: the wildcard is limited to schedules of Fidelio's own "
                    "schedule group.",
                )
        privacy_role = self.roles["privacy"]
        for prefix in (*PRIVACY_WRITABLE_PREFIXES, MODELS_PREFIX):
            acknowledge(
                privacy_role,
                f"AwsSolutions-IAM5[Resource::{nag_resource(self, r.data_bucket.arn_for_objects(prefix + '*'))}]",
                f"GDPR export and erasure read every object under {prefix} (keys are dates and "
                "content hashes, unknown in advance) and rewrite archives without the erased member's "
                "rows; the wildcard is limited to that prefix of the data bucket"
                + (" and to reading model cards." if prefix == MODELS_PREFIX else "."),
            )
        decide_role = self.roles["decide"]
        acknowledge(
            decide_role,
            f"AwsSolutions-IAM5[Resource::{archive_objects}]",
            "decide writes one JSON-lines object per batch under decisions/date=YYYY-MM-DD/ "
            "(keys are content hashes): writes are limited to that prefix of the data bucket.",
        )
        acknowledge(
            decide_role,
            "AwsSolutions-IAM5[Action::s3:Abort*]",
            "From the bucket's put grant (s3:AbortMultipartUpload, for uploads the SDK splits), "
            "limited to the decisions/ prefix of the data bucket.",
        )


def _check_covers_settings(values: dict[str, str], *, secrets: frozenset[str]) -> None:
    """Fail synth when a Settings field that names a resource is left to its default
    (secrets: the secret-naming fields this function is given; the others stay unset)."""
    resource_fields = set(Settings.model_fields) - NON_RESOURCE_SETTINGS
    resource_fields -= SECRET_SETTINGS - secrets
    missing = sorted(field for field in resource_fields if env_var(field) not in values)
    if missing:
        raise ValueError(f"function environment does not set Settings fields {missing}")
    settings_from_env(values)  # the names parse as the functions will parse them
