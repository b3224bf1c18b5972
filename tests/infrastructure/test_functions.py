"""Each Lambda function is built as spec.FUNCTIONS says, triggered by its queue (if it has one),
and configured through the same Settings the handlers read."""

from __future__ import annotations

from typing import Any

from functions.settings import Settings, env_var
from infra import constants, spec
from infra.constants import LINK_SIGNING_FUNCTIONS, NON_RESOURCE_SETTINGS
from tests.infrastructure.cfn_template import ref_id, resources_of


def test_functions_run_the_spec_handler_on_python_313_arm(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    for function_spec in spec.FUNCTIONS:
        properties = template_json["Resources"][function_ids[function_spec.logical_name]]["Properties"]
        # Given a function of the spec
        # Then runtime, architecture, handler and sizing are the spec's
        assert properties["Runtime"] == "python3.13"
        assert properties["Architectures"] == ["arm64"]
        assert properties["Handler"] == function_spec.handler
        assert properties["MemorySize"] == function_spec.memory_mb
        assert properties["Timeout"] == function_spec.timeout_s
        assert properties.get("ReservedConcurrentExecutions") == function_spec.reserved_concurrency
        # and it is traced
        assert properties["TracingConfig"] == {"Mode": "Active"}


def test_dispatch_concurrency_is_capped_to_protect_sending_quotas(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    # Given dispatch, the only function that talks to SES/SNS
    dispatch = template_json["Resources"][function_ids["dispatch"]]["Properties"]
    # Then its reserved concurrency bounds the send rate
    dispatch_spec = next(f for f in spec.FUNCTIONS if f.logical_name == "dispatch")
    assert dispatch_spec.reserved_concurrency
    assert dispatch["ReservedConcurrentExecutions"] == dispatch_spec.reserved_concurrency
    # and its queue's pollers never exceed it (throttled batches would count as receives
    # and reach the DLQ)
    (mapping,) = [
        m["Properties"]
        for m in resources_of(template_json, "AWS::Lambda::EventSourceMapping").values()
        if ref_id(m["Properties"]["FunctionName"]) == function_ids["dispatch"]
    ]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] <= dispatch["ReservedConcurrentExecutions"]


def test_each_function_consumes_its_queue_with_partial_batch_failures(
    template_json: dict[str, Any],
    function_ids: dict[str, str],
    queue_ids: dict[str, tuple[str, str]],
) -> None:
    mappings = [
        m["Properties"] for m in resources_of(template_json, "AWS::Lambda::EventSourceMapping").values()
    ]
    for function_spec in spec.FUNCTIONS:
        feeding = [m for m in mappings if ref_id(m["FunctionName"]) == function_ids[function_spec.logical_name]]
        if function_spec.queue is None:  # called synchronously (the offers API)
            assert feeding == []
            continue
        queue_spec = spec.queue_spec(function_spec.queue)
        # Given the mapping that feeds the function
        (mapping,) = feeding
        # Then it reads the function's queue, in the spec's batches
        assert ref_id(mapping["EventSourceArn"]) == queue_ids[function_spec.queue][0]
        assert mapping["BatchSize"] == queue_spec.batch_size
        assert mapping["MaximumBatchingWindowInSeconds"] == queue_spec.max_batching_window_s
        # and a failed record is retried alone, not with its whole batch
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_resource_setting_is_set_from_the_real_resource(
    template_json: dict[str, Any],
    function_ids: dict[str, str],
    table_ids: dict[str, str],
    queue_ids: dict[str, tuple[str, str]],
) -> None:
    resource_fields = set(Settings.model_fields) - NON_RESOURCE_SETTINGS
    for function_spec in spec.FUNCTIONS:
        name = function_spec.logical_name
        variables = template_json["Resources"][function_ids[name]]["Properties"]["Environment"]["Variables"]
        # Given the environment of a function
        # Then every Settings field naming a resource is set (secrets only where used)
        expected = resource_fields
        if name not in LINK_SIGNING_FUNCTIONS:
            expected = expected - {"link_signing_secret"}
        if name not in constants.PSEUDONYM_SALT_FUNCTIONS:
            expected = expected - {"pseudonym_salt_secret"}
        missing = sorted(f for f in expected if env_var(f) not in variables)
        assert not missing, f"{name} leaves {missing} to their defaults"
        # and the values point at this stack's resources
        for table, table_id in table_ids.items():
            assert ref_id(variables[env_var(f"{table}_table")]) == table_id
        assert ref_id(variables[env_var("decide_queue_url")]) == queue_ids["decide"][0]
        assert ref_id(variables[env_var("dispatch_queue_url")]) == queue_ids["dispatch"][0]
        assert ref_id(variables[env_var("dispatch_queue_arn")]) == queue_ids["dispatch"][0]
        if function_spec.queue is None:
            assert variables[env_var("dlq_url")] == ""  # no queue, so no DLQ to dead-letter to
        else:
            assert ref_id(variables[env_var("dlq_url")]) == queue_ids[function_spec.queue][1]
        assert variables[env_var("schedule_group")] == spec.Names().schedule_group
        # and Powertools is configured for the service
        assert variables["POWERTOOLS_SERVICE_NAME"] == f"fidelio-{name}"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Fidelio"
        assert variables["POWERTOOLS_LOG_LEVEL"] == constants.DEFAULT_LOG_LEVEL


def test_the_link_signing_key_never_appears_in_the_template(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    (secret_id,) = [i for i in resources_of(template_json, "AWS::SecretsManager::Secret") if "LinkSigningKey" in i]
    for name in sorted(LINK_SIGNING_FUNCTIONS):
        variables = template_json["Resources"][function_ids[name]]["Properties"]["Environment"]["Variables"]
        # Given the environment of a function that signs or verifies links
        # Then it names the generated secret (read at run time, so rotation needs no deploy)
        assert variables[env_var("link_signing_secret")] == {"Ref": secret_id}
        # and holds no key itself, not even as a deploy-time dynamic reference
        assert env_var("link_signing_keys") not in variables
        assert "resolve:secretsmanager" not in repr(variables)


def test_only_model_scorers_carry_the_model_runtime_layer(
    template_json: dict[str, Any], function_ids: dict[str, str], stack: Any
) -> None:
    layers = resources_of(template_json, "AWS::Lambda::LayerVersion")
    core = next(i for i, layer in layers.items() if "pydantic" in layer["Properties"]["Description"])
    numpy = next(i for i, layer in layers.items() if layer["Properties"]["Description"].startswith("numpy"))
    ml = next(i for i, layer in layers.items() if "onnxruntime" in layer["Properties"]["Description"])
    for function_spec in spec.FUNCTIONS:
        properties = template_json["Resources"][function_ids[function_spec.logical_name]]["Properties"]
        # Given a function's layers
        attached = sorted(ref_id(layer) for layer in properties["Layers"])  # they share no file
        # Then every function has the core layer, numpy only where it scores or does batch math,
        # and only model scorers the ML one
        if function_spec.needs_model:
            assert attached == sorted([core, numpy, ml])
        elif function_spec.needs_numpy:
            assert attached == sorted([core, numpy])
        else:
            assert attached == [core]
    assert {n.logical_name for n in spec.FUNCTIONS if not (n.needs_model or n.needs_numpy)} >= {
        "ingest", "dispatch", "feedback", "preferences", "privacy", "drift_monitor"
    }
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_function_logs_are_kept_a_month_encrypted_in_their_own_group(
    template_json: dict[str, Any], function_ids: dict[str, str]
) -> None:
    (key_id,) = resources_of(template_json, "AWS::KMS::Key")
    for name, function_id in function_ids.items():
        properties = template_json["Resources"][function_id]["Properties"]
        group_id = ref_id(properties["LoggingConfig"]["LogGroup"])
        group = template_json["Resources"][group_id]["Properties"]
        assert group["RetentionInDays"] == constants.LOG_RETENTION_DAYS, name
        assert ref_id(group["KmsKeyId"]) == key_id, name
        # and the environment (which holds a secret for dispatch) is encrypted with it too
        assert ref_id(properties["KmsKeyArn"]) == key_id, name
