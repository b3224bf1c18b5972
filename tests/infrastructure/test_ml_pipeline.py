"""The retraining loop in the synthesized template: the SageMaker pipeline's definition (steps,
images, gate, parameters), its least-privilege role, what starts it (weekly schedule, drift
alarm), the dashboard; and that the SDK that builds it stays out of every Lambda layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fidelio import pipeline_steps as steps
from infra import constants, pipeline, spec
from tests.infrastructure.cfn_template import as_list, ref_id, resources_of, statements_of_role

REPO_ROOT = Path(__file__).resolve().parents[2]
# AWS's scikit-learn 1.9-0 images in eu-west-1 (the stack's default region).
SKLEARN_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
NAMES = spec.Names()


def _flatten(value: Any) -> str:
    """A CloudFormation string (maybe Fn::Join of intrinsics) with each intrinsic as a marker."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_flatten(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::Sub" in value:
        return f"<Sub:{value['Fn::Sub']}>"
    raise AssertionError(f"unexpected intrinsic {value!r}")


def _one(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources_of(template, resource_type)
    assert len(found) == 1, f"{resource_type}: {list(found)}"
    return next(iter(found.items()))


@pytest.fixture(scope="module")
def pipeline_resource(template_json: dict[str, Any]) -> dict[str, Any]:
    return _one(template_json, "AWS::SageMaker::Pipeline")[1]


@pytest.fixture(scope="module")
def definition(pipeline_resource: dict[str, Any]) -> dict[str, Any]:
    body = pipeline_resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    return dict(json.loads(_flatten(body)))


@pytest.fixture(scope="module")
def all_steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    pending = list(definition["Steps"])
    while pending:
        step = pending.pop(0)
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            pending += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return found


@pytest.fixture(scope="module")
def ids(template_json: dict[str, Any]) -> dict[str, str]:
    role_id = ref_id(_one(template_json, "AWS::SageMaker::Pipeline")[1]["Properties"]["RoleArn"])
    assert role_id is not None
    return {
        "role": role_id,
        "group": _one(template_json, "AWS::SageMaker::ModelPackageGroup")[0],
        "data_bucket": next(i for i, r in resources_of(template_json, "AWS::S3::Bucket").items()
                            if "BucketEncryption" in r["Properties"] and "KMSMasterKeyID" in json.dumps(r)),
        "key": _one(template_json, "AWS::KMS::Key")[0],
    }


# --- the pipeline and its definition -------------------------------------------------------


def test_pipeline_and_model_package_group_are_deployed(template_json: dict[str, Any],
                                                       pipeline_resource: dict[str, Any], ids: dict[str, str]) -> None:
    properties = pipeline_resource["Properties"]
    assert properties["PipelineName"] == NAMES.retraining_pipeline
    assert template_json["Resources"][ids["group"]]["Properties"]["ModelPackageGroupName"] == NAMES.model_package_group
    assert ids["group"] in as_list(pipeline_resource.get("DependsOn", []))
    assert properties["RoleArn"] == {"Fn::GetAtt": [ids["role"], "Arn"]}


def test_steps_run_in_order_with_the_gate_deciding(definition: dict[str, Any],
                                                   all_steps: dict[str, dict[str, Any]]) -> None:
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("Prepare", "Processing"), ("Train", "Training"), ("Evaluate", "Processing"), ("Gate", "Condition")]
    gate = all_steps["Gate"]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in gate["IfSteps"]] == [("Register", "RegisterModel"), ("Promote", "Processing")]
    assert [(s["Name"], s["Type"]) for s in gate["ElseSteps"]] == [("Refused", "Fail")]
    assert all_steps["Promote"]["DependsOn"] == ["Register"]
    assert sorted(all_steps) == sorted(pipeline.STEP_NAMES)
    # Each step reads what the one before wrote
    train_input = all_steps["Train"]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert train_input == {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    evaluate_inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in all_steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert evaluate_inputs["candidate"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert evaluate_inputs["test"] == {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}


def test_every_job_runs_the_regions_scikit_learn_image(all_steps: dict[str, dict[str, Any]]) -> None:
    images = {name: step["Arguments"]["AppSpecification"]["ImageUri"]
              for name, step in all_steps.items() if step["Type"] == "Processing"}
    images["Train"] = all_steps["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    images["Register"] = all_steps["Register"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Image"]
    assert images == {name: SKLEARN_IMAGE for name in ("Prepare", "Evaluate", "Promote", "Train", "Register")}
    assert pipeline.sklearn_image_uri("us-east-1").startswith("683313688378.dkr.ecr.us-east-1.amazonaws.com/")


def test_steps_run_fidelios_entry_points_from_the_code_asset(all_steps: dict[str, dict[str, Any]]) -> None:
    modules = {}
    code_uris = set()
    for name in ("Prepare", "Evaluate", "Promote"):
        arguments = all_steps[name]["Arguments"]
        entrypoint = arguments["AppSpecification"]["ContainerEntrypoint"]
        assert entrypoint[:3] == ["/bin/bash", "-c", pipeline.RUN_STEP]
        modules[name] = entrypoint[3]
        code_uris |= {i["S3Input"]["S3Uri"] for i in arguments["ProcessingInputs"] if i["InputName"] == "code"}
    hyperparameters = all_steps["Train"]["Arguments"]["HyperParameters"]
    code_uris.add(json.loads(hyperparameters["sagemaker_submit_directory"]))
    assert modules == {"Prepare": "functions.training.prepare", "Evaluate": "functions.training.evaluate",
                       "Promote": "functions.training.promote"}
    assert json.loads(hyperparameters["sagemaker_program"]) == "functions/training/train.py"
    for module in [*modules.values(), "functions.training.train"]:
        assert (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file()
    # One asset (the CDK bootstrap bucket), no placeholder left behind
    assert len(code_uris) == 1
    (code_uri,) = code_uris
    assert code_uri.startswith("<Sub:s3://cdk-") and code_uri.endswith(".gz>")


def test_no_placeholder_survives_binding(pipeline_resource: dict[str, Any]) -> None:
    body = _flatten(pipeline_resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
    for placeholder in (pipeline.PLACEHOLDER_BUCKET, pipeline.PLACEHOLDER_ROLE_ARN, pipeline.PLACEHOLDER_KMS_KEY_ARN,
                        pipeline.PLACEHOLDER_CODE_URI, "000000000000"):
        assert placeholder not in body


def test_the_gate_checks_auc_calibration_and_off_policy_value(all_steps: dict[str, dict[str, Any]]) -> None:
    def operand(value: dict[str, Any]) -> str:
        if "Std:JsonGet" in value:
            json_get = value["Std:JsonGet"]
            assert json_get["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}
            return f"evaluation.json:{json_get['Path']}"
        return str(value["Get"])

    conditions = [(c["Type"], operand(c["LeftValue"]), operand(c["RightValue"]))
                  for c in all_steps["Gate"]["Arguments"]["Conditions"]]
    assert conditions == [
        ("GreaterThanOrEqualTo", "evaluation.json:candidate.auc", "evaluation.json:gate.required_auc"),
        ("LessThanOrEqualTo", "evaluation.json:candidate.brier", "evaluation.json:gate.max_brier"),
        ("GreaterThanOrEqualTo", "evaluation.json:candidate.ope.ci_low", "evaluation.json:champion.ope.estimate"),
        ("GreaterThanOrEqualTo", "evaluation.json:candidate.ope.ci_low", "Parameters.MinOpeValue"),
    ]
    # The paths are the ones evaluate writes (fidelio.pipeline_steps names them once)
    assert {steps.GATE_CANDIDATE_AUC, steps.GATE_REQUIRED_AUC, steps.GATE_CANDIDATE_BRIER, steps.GATE_MAX_BRIER,
            steps.GATE_CANDIDATE_OPE_LOW, steps.GATE_CHAMPION_OPE} == {
        c[i].split(":", 1)[1] for c in conditions for i in (1, 2) if c[i].startswith("evaluation.json")}
    evaluation = all_steps["Evaluate"]["Arguments"]
    assert evaluation["ProcessingOutputConfig"]["Outputs"][0]["OutputName"] == "evaluation"
    refused = all_steps["Refused"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert refused[1]["Std:JsonGet"]["Path"] == steps.GATE_REASON


def test_parameters_and_their_defaults(definition: dict[str, Any], ids: dict[str, str]) -> None:
    parameters = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in definition["Parameters"]}
    assert parameters == {
        "InputDataUri": ("String", f"s3://<Ref:{ids['data_bucket']}>/training/decisions"),
        "ProcessingInstanceType": ("String", "ml.m5.large"),
        "TrainingInstanceType": ("String", "ml.m5.large"),
        "MinAucImprovement": ("Float", steps.DEFAULT_MIN_AUC_GAIN),
        "CalibrationTolerance": ("Float", steps.DEFAULT_CALIBRATION_TOLERANCE),
        "MinOpeValue": ("Float", steps.DEFAULT_MIN_OPE_VALUE),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
        "InitialChallengerShare": ("Float", steps.DEFAULT_INITIAL_SHARE),
    }
    # Evaluate receives the gate's margins, Promote the approval status and first share
    evaluate_args = json.dumps(_step_arguments(definition, "Evaluate"))
    for name in ("MinAucImprovement", "CalibrationTolerance", "MinOpeValue"):
        assert f"Parameters.{name}" in evaluate_args
    promote_args = json.dumps(_step_arguments(definition, "Promote"))
    assert "Parameters.ModelApprovalStatus" in promote_args and "Parameters.InitialChallengerShare" in promote_args
    assert NAMES.serving_config_parameter in promote_args and spec.MODEL_REGISTRY_PREFIX in promote_args


def _step_arguments(definition: dict[str, Any], name: str) -> list[Any]:
    text = json.dumps(definition)
    marker = f'"Name": "{name}"'
    assert marker in text
    for step in [*definition["Steps"], *definition["Steps"][3]["Arguments"]["IfSteps"]]:
        if step["Name"] == name:
            return list(step["Arguments"]["AppSpecification"]["ContainerArguments"])
    raise AssertionError(name)


def test_register_puts_the_model_and_its_evaluation_in_the_group(all_steps: dict[str, dict[str, Any]],
                                                                 ids: dict[str, str]) -> None:
    register = all_steps["Register"]["Arguments"]
    assert register["ModelPackageGroupName"] == NAMES.model_package_group
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    container = register["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"]
    assert statistics == [{"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
                          steps.EVALUATION_FILE]
    # Job outputs are encrypted with Fidelio's key
    assert all_steps["Train"]["Arguments"]["OutputDataConfig"]["KmsKeyId"] == f"<GetAtt:{ids['key']}.Arn>"


# --- least privilege ---------------------------------------------------------------------------


def test_execution_role_is_least_privilege(template_json: dict[str, Any], ids: dict[str, str]) -> None:
    role = template_json["Resources"][ids["role"]]["Properties"]
    assert "ManagedPolicyArns" not in role  # no AmazonSageMakerFullAccess, nothing managed
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    statements = statements_of_role(template_json, ids["role"])
    assert statements
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not [a for a in actions if a == "*" or a.endswith(":*")]
    assert all(s["Effect"] == "Allow" and "*" not in as_list(s["Resource"]) for s in statements)
    for statement in statements:
        resources = [_flatten(r) for r in as_list(statement["Resource"])]
        services = {a.split(":")[0] for a in as_list(statement["Action"])}
        if services == {"s3"} and "s3:ListBucket" not in as_list(statement["Action"]):
            for resource in resources:  # objects under Fidelio's prefixes, or the code asset
                assert resource.startswith((f"<GetAtt:{ids['data_bucket']}.Arn>/", "arn:aws:s3:::<Sub:cdk-")), resource
                assert resource.endswith(("/*", ".gz")) and not resource.endswith(">/*"), resource
        if "s3:ListBucket" in as_list(statement["Action"]):  # listing only under its own prefixes
            assert as_list(statement["Action"]) == ["s3:ListBucket"] and "s3:prefix" in json.dumps(statement["Condition"])
        if services == {"kms"}:
            assert resources == [f"<GetAtt:{ids['key']}.Arn>"]
        if services == {"sagemaker"}:
            assert all(":processing-job/pipelines-" in r or ":training-job/pipelines-" in r
                       or NAMES.model_package_group in r for r in resources), resources
        if services == {"iam"}:
            assert resources == [f"<GetAtt:{ids['role']}.Arn>"]
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
        if services == {"ecr"}:
            assert resources == ["arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn"]
    assert {"sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob", "sagemaker:CreateModelPackage",
            "ssm:PutParameter", "s3:PutObject", "kms:GenerateDataKey"} <= actions
    assert not {"sagemaker:CreatePipeline", "sagemaker:DeleteModelPackageGroup", "s3:DeleteObject",
                "ssm:DeleteParameter", "iam:CreateRole"} & actions


def test_eventbridge_may_only_start_this_pipeline(template_json: dict[str, Any]) -> None:
    rules = resources_of(template_json, "AWS::Events::Rule")
    retraining = {k: r for k, r in rules.items() if r["Properties"].get("Name", "").startswith("fidelio-retraining")}
    roles = {ref_id(t["RoleArn"]) for r in retraining.values() for t in r["Properties"]["Targets"]}
    assert len(retraining) == 2 and len(roles) == 1
    (role_id,) = roles
    assert role_id is not None
    assert statements_of_role(template_json, role_id) == [{
        "Action": "sagemaker:StartPipelineExecution", "Effect": "Allow",
        "Resource": {"Fn::Join": ["", ["arn:aws:sagemaker:eu-west-1:", {"Ref": "AWS::AccountId"},
                                       f":pipeline/{NAMES.retraining_pipeline}"]]}}]


# --- what starts it ----------------------------------------------------------------------------


def _pipeline_targets(rule: dict[str, Any]) -> list[str]:
    return [_flatten(t["Arn"]) for t in rule["Properties"]["Targets"]]


def test_a_weekly_schedule_starts_the_pipeline(template_json: dict[str, Any]) -> None:
    rules = [r for r in resources_of(template_json, "AWS::Events::Rule").values()
             if r["Properties"].get("ScheduleExpression") == spec.RETRAINING_SCHEDULE]
    assert len(rules) == 1
    assert spec.RETRAINING_SCHEDULE.startswith("cron(") and " ? * SUN " in spec.RETRAINING_SCHEDULE
    assert _pipeline_targets(rules[0]) == [f"arn:aws:sagemaker:eu-west-1:<Ref:AWS::AccountId>:pipeline/{NAMES.retraining_pipeline}"]


def test_drift_alarm_watches_max_feature_psi(template_json: dict[str, Any]) -> None:
    alarms = {k: a["Properties"] for k, a in resources_of(template_json, "AWS::CloudWatch::Alarm").items()
              if a["Properties"].get("MetricName") == "MaxFeaturePSI"}
    assert len(alarms) == 1
    (alarm,) = alarms.values()
    assert (alarm["Namespace"], alarm["MetricName"]) == spec.DRIFT_METRIC == ("Fidelio", "MaxFeaturePSI")
    assert alarm["Threshold"] == 0.2 == spec.DRIFT_THRESHOLD
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["Period"], alarm["Statistic"]) == (1, 86400, "Maximum")
    assert alarm["TreatMissingData"] == "notBreaching"
    topics = resources_of(template_json, "AWS::SNS::Topic")
    assert [ref_id(a) for a in alarm["AlarmActions"]] == [
        next(k for k, t in topics.items() if t["Properties"].get("TopicName") == f"{NAMES.prefix}-alarms")]


def test_the_drift_alarm_going_off_starts_the_pipeline(template_json: dict[str, Any]) -> None:
    alarm_id = next(k for k, a in resources_of(template_json, "AWS::CloudWatch::Alarm").items()
                    if a["Properties"].get("MetricName") == "MaxFeaturePSI")
    rules = [r for r in resources_of(template_json, "AWS::Events::Rule").values()
             if r["Properties"].get("EventPattern", {}).get("source") == ["aws.cloudwatch"]]
    assert len(rules) == 1
    assert rules[0]["Properties"]["EventPattern"] == {
        "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [{"Fn::GetAtt": [alarm_id, "Arn"]}], "detail": {"state": {"value": ["ALARM"]}}}
    assert _pipeline_targets(rules[0]) == [f"arn:aws:sagemaker:eu-west-1:<Ref:AWS::AccountId>:pipeline/{NAMES.retraining_pipeline}"]


# --- dashboard -------------------------------------------------------------------------------


def test_dashboard_shows_traffic_outcomes_failures_variants_and_drift(template_json: dict[str, Any]) -> None:
    _, dashboard = _one(template_json, "AWS::CloudWatch::Dashboard")
    body = json.loads(_flatten(dashboard["Properties"]["DashboardBody"]))
    widgets = {w["properties"]["title"]: w["properties"] for w in body["widgets"]}
    assert set(widgets) == {
        "Decisions", "Sends by channel", "Engagement and conversions", "Unsubscribes and complaints",
        "Dead-letter queues (messages waiting)", "Model variant traffic (decisions)",
        "Feature drift (max PSI over features)", "Alarms",
        "Calibration (realized ÷ predicted redemptions, by model version)"}

    def metric_names(title: str) -> list[str]:
        return [m[1] for m in widgets[title]["metrics"] if isinstance(m[1], str) and m[0] != "..."]

    assert metric_names("Decisions")[0] == "Decisions"
    assert metric_names("Sends by channel")[:3] == ["Sent_email", "Sent_push", "Sent_sms"]
    assert "OneClickUnsubscribes" in metric_names("Unsubscribes and complaints")
    dlq_metrics = widgets["Dead-letter queues (messages waiting)"]["metrics"]
    assert len(dlq_metrics) == len(spec.QUEUES)
    assert all(m[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"] for m in dlq_metrics)
    variant = widgets["Model variant traffic (decisions)"]["metrics"][0][0]["expression"]
    assert "MetricName=\"Decisions\"" in variant and "Variant" in variant
    drift = widgets["Feature drift (max PSI over features)"]
    assert drift["metrics"][0][:2] == list(spec.DRIFT_METRIC)
    assert drift["annotations"]["horizontal"][0]["value"] == spec.DRIFT_THRESHOLD
    assert len(widgets["Alarms"]["alarms"]) == len(resources_of(template_json, "AWS::CloudWatch::Alarm"))
    calibration = widgets["Calibration (realized ÷ predicted redemptions, by model version)"]["metrics"][0][0]
    assert "MetricName=\"CalibrationRatio\"" in calibration["expression"] and "ModelVersion" in calibration["expression"]


# --- build time ----------------------------------------------------------------------------------


def test_sagemaker_is_locked_but_never_in_a_lambda_layer() -> None:
    from infra.bundle import layer_requirements, read_lock

    lock = read_lock(REPO_ROOT / "uv.lock")
    assert "sagemaker" in lock  # the build-time `pipeline` extra
    layers = layer_requirements(REPO_ROOT / "uv.lock")
    bundled = {name for pins in layers.values() for name in pins}
    assert bundled and not {n for n in bundled if n.startswith("sagemaker") or n in {"mlflow", "pandas", "lightgbm"}}
    # The code asset (functions/, copied whole by infra/bundle.py) never imports it either
    importing = [path.name for path in (REPO_ROOT / "functions").rglob("*.py")
                 if "import sagemaker" in path.read_text() or "from sagemaker" in path.read_text()]
    assert importing == []


def test_definition_builds_without_network_or_credentials(tmp_path: Path) -> None:
    # Given a fresh interpreter whose sockets refuse to connect, without AWS credentials
    script = (
        "import socket, json\n"
        "def refuse(*a, **k): raise OSError('network used while building the pipeline')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from infra.pipeline import PipelineSettings, build_definition\n"
        "d = build_definition(PipelineSettings('p', 'eu-west-1', 'g', '/fidelio/serving-config'))\n"
        "print(json.dumps([s['Name'] for s in d['Steps']]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    # Then it builds the definition all the same
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["Prepare", "Train", "Evaluate", "Gate"]


def test_code_archive_is_reproducible_and_holds_what_the_steps_run(tmp_path: Path) -> None:
    import tarfile

    first = pipeline.build_code_archive(constants.REPO_ROOT, tmp_path / "a.tar.gz")
    second = pipeline.build_code_archive(constants.REPO_ROOT, tmp_path / "b.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as archive:
        names = set(archive.getnames())
        requirements = archive.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {"requirements.txt", "functions/training/train.py", "functions/training/evaluate.py",
            "fidelio/pipeline_steps.py", "fidelio/training_export.py", "model_artifacts/offers/model.onnx",
            "model_artifacts/offers/metadata.json"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]
    assert "lightgbm==" in requirements and "sagemaker" not in requirements


def test_bind_refuses_a_placeholder_the_definition_lacks() -> None:
    with pytest.raises(pipeline.PipelineDefinitionError, match="not in the pipeline definition"):
        pipeline.bind({"Steps": []}, {pipeline.PLACEHOLDER_BUCKET: "bucket"})


def test_the_processing_bootstrap_runs_a_step_from_the_archive(tmp_path: Path) -> None:
    """RUN_STEP as a Processing job runs it (container paths moved under tmp_path, pip skipped:
    the test's interpreter already has the requirements)."""
    from tests.unit.test_training_steps import write_export

    code_dir = tmp_path / "opt/ml/processing/input/code"
    # Given the code archive where the job puts it, under the asset's name (<hash>.gz)
    pipeline.build_code_archive(constants.REPO_ROOT, code_dir / "3f2a.gz")
    export = write_export(tmp_path / "data", decisions=300)
    script = (pipeline.RUN_STEP.replace("/opt/ml", str(tmp_path / "opt/ml"))
              .replace("python3 -m pip install", "true").replace("exec python3", f"exec {sys.executable}"))
    # When the entrypoint runs with the step's module and arguments
    result = subprocess.run(["/bin/bash", "-c", script, "functions.training.prepare", "--input", str(export),
                             "--output", str(tmp_path / "prepared")], capture_output=True, text=True,
                            timeout=300, check=False, env={**os.environ, "PYTHONPATH": ""})
    # Then the step ran from the unpacked archive and wrote its outputs
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "opt/ml/code/functions/training/prepare.py").is_file()
    assert json.loads(result.stdout)["decisions"] == 300
    assert (tmp_path / "prepared/train/decisions.parquet").is_file()
