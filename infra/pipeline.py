"""The retraining pipeline's definition, built with the SageMaker Python SDK v3 at synth time.

    Prepare (Processing) -> Train (Training) -> Evaluate (Processing, evaluation.json)
      -> Gate (Condition) -- passed --> Register (model package) -> Promote (Processing)
                          -- refused -> Refused (Fail, with the gate's reason)

Every step runs Fidelio's code (functions/training/ entry points calling fidelio.pipeline_steps)
in AWS's scikit-learn container, from one code archive (`build_code_archive`) that CDK uploads
as an asset. The SDK runs offline here: no AWS call, no upload, no telemetry. Values that are
CDK tokens at synth (bucket, role, key, the archive's location) cannot pass through the SDK (it
parses S3 URIs), so the definition is built with the placeholders below and the construct swaps
them for the tokens (`bind`).

`sagemaker` is imported only inside `build_definition`: it is a build-time dependency (the
`pipeline` extra), never part of a Lambda bundle.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import tarfile
import tomllib
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fidelio import pipeline_steps as steps
from fidelio.training_export import TRAINING_PREFIX

SKLEARN_FRAMEWORK = "sklearn"
SKLEARN_VERSION = "1.9-0"  # the newest scikit-learn container: Python >= 3.11, as Fidelio needs
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
WORK_PREFIX = "pipeline"  # s3://<data bucket>/pipeline/<execution id>/{prepared,models,evaluation}
TRAINING_EXPORT_PREFIX = TRAINING_PREFIX  # where fidelio.training_export writes its Parquet parts
MAX_RUNTIME_S = 3600

# Stand-ins for CDK tokens while the SDK builds the definition (see the module docstring).
PLACEHOLDER_BUCKET = "fidelio-placeholder-data-bucket"
PLACEHOLDER_ROLE_ARN = "arn:aws:iam::000000000000:role/fidelio-placeholder-pipeline-role"
PLACEHOLDER_KMS_KEY_ARN = "arn:aws:kms:eu-west-1:000000000000:key/fidelio-placeholder-key"
PLACEHOLDER_CODE_URI = "s3://fidelio-placeholder-code-bucket/fidelio-placeholder-code.tar.gz"

CODE_DIR_IN_CONTAINER = "/opt/ml/processing/input/code"
# A Processing job gets the code archive (CDK names the asset <hash>.gz) as a file: unpack it, install the training libraries,
# run the step's module with the job's arguments ($0 is the module, "$@" the arguments).
RUN_STEP = (
    "set -euo pipefail; mkdir -p /opt/ml/code; "
    f"tar -xzf {CODE_DIR_IN_CONTAINER}/*.gz -C /opt/ml/code; "
    "python3 -m pip install --quiet --disable-pip-version-check -r /opt/ml/code/requirements.txt; "
    'cd /opt/ml/code && exec python3 -m "$0" "$@"'
)
TRAIN_PROGRAM = "functions/training/train.py"  # run by the training toolkit from the unpacked archive

# What the containers install on top of the scikit-learn image, at the versions uv.lock pins.
CONTAINER_REQUIREMENTS = (
    "lightgbm", "onnxmltools", "onnx", "onnxruntime", "numpy", "scipy", "pyarrow", "pydantic", "boto3",
)
ARCHIVE_SOURCES = ("functions", "fidelio", "model_artifacts/offers")
ARCHIVE_EXCLUDED_PARTS = frozenset({"__pycache__", "tests", ".pytest_cache"})

# Step names, in the order they run (Register and Promote only when the gate passes).
STEP_NAMES = ("Prepare", "Train", "Evaluate", "Gate", "Register", "Promote", "Refused")


@dataclass(frozen=True)
class PipelineSettings:
    pipeline_name: str
    region: str
    model_package_group: str
    serving_config_parameter: str
    model_registry_prefix: str = "models/offers"
    default_approval_status: str = "PendingManualApproval"


class PipelineDefinitionError(RuntimeError):
    pass


@contextmanager
def offline_sdk(region: str) -> Iterator[None]:
    """Environment under which the SDK builds a definition without touching AWS: a region
    (boto3 needs one), no role validation, no instance-metadata credential lookup (the SDK
    creates a client at import time), its notices muted. Restored afterwards."""
    wanted = {"AWS_DEFAULT_REGION": region, "SAGEMAKER_VALIDATE_ROLE": "false", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    # The SDK narrates what it does for a live session ("Popping out 'ProcessingJobName'", "No
    # Job being started"): expected here, and noise in `cdk synth`'s output.
    muted = logging.root.manager.disable  # calls nest (the image lookup inside the build)
    logging.disable(max(muted, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(muted)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sklearn_image_uri(region: str, scope: str = "training") -> str:
    """AWS's scikit-learn container for `region` (an account and repository that vary by region)."""
    with offline_sdk(region):
        from sagemaker.core import image_uris

        return str(image_uris.retrieve(SKLEARN_FRAMEWORK, region, version=SKLEARN_VERSION, py_version="py3",
                                       instance_type=DEFAULT_INSTANCE_TYPE, image_scope=scope))


def _pipeline_session(region: str) -> Any:
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    no_telemetry = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
    session = PipelineSession(boto_session=boto3.Session(region_name=region), default_bucket=PLACEHOLDER_BUCKET,
                              sagemaker_config=no_telemetry)
    # default_bucket() would look the bucket up (and create it) in S3: it is already known.
    session._default_bucket = PLACEHOLDER_BUCKET
    return session


def build_definition(settings: PipelineSettings) -> dict[str, Any]:
    """The pipeline definition (a dict in SageMaker's JSON schema), with placeholders."""
    with offline_sdk(settings.region):
        return json.loads(_build(settings))


def _s3(*parts: Any) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[f"s3://{PLACEHOLDER_BUCKET}", WORK_PREFIX,
                                ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])


def _build(settings: PipelineSettings) -> str:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import Compute, InputData, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer

    session = _pipeline_session(settings.region)
    image = sklearn_image_uri(settings.region)
    input_data = ParameterString("InputDataUri", default_value=f"s3://{PLACEHOLDER_BUCKET}/{TRAINING_EXPORT_PREFIX}")
    processing_instance = ParameterString("ProcessingInstanceType", default_value=DEFAULT_INSTANCE_TYPE)
    training_instance = ParameterString("TrainingInstanceType", default_value=DEFAULT_INSTANCE_TYPE)
    min_auc_gain = ParameterFloat("MinAucImprovement", default_value=steps.DEFAULT_MIN_AUC_GAIN)
    calibration_tolerance = ParameterFloat("CalibrationTolerance", default_value=steps.DEFAULT_CALIBRATION_TOLERANCE)
    min_ope_value = ParameterFloat("MinOpeValue", default_value=steps.DEFAULT_MIN_OPE_VALUE)
    approval_status = ParameterString("ModelApprovalStatus", default_value=settings.default_approval_status,
                                      enum_values=["Approved", "PendingManualApproval"])
    initial_share = ParameterFloat("InitialChallengerShare", default_value=steps.DEFAULT_INITIAL_SHARE)
    parameters = [input_data, processing_instance, training_instance, min_auc_gain, calibration_tolerance,
                  min_ope_value, approval_status, initial_share]

    def processor(module: str) -> Any:
        return Processor(role=PLACEHOLDER_ROLE_ARN, image_uri=image, instance_count=1,
                         instance_type=processing_instance, entrypoint=["/bin/bash", "-c", RUN_STEP, module],
                         output_kms_key=PLACEHOLDER_KMS_KEY_ARN, max_runtime_in_seconds=MAX_RUNTIME_S,
                         base_job_name="fidelio", sagemaker_session=session)

    def source(name: str, uri: Any, local_path: str) -> Any:
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"))

    def sink(name: str, local_path: str) -> Any:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=_s3(name), local_path=local_path, s3_upload_mode="EndOfJob"))

    code = source("code", PLACEHOLDER_CODE_URI, CODE_DIR_IN_CONTAINER)
    registry_args = ["--bucket", PLACEHOLDER_BUCKET, "--registry-prefix", settings.model_registry_prefix,
                     "--serving-config-parameter", settings.serving_config_parameter]

    prepare = ProcessingStep(name="Prepare", step_args=processor("functions.training.prepare").run(
        inputs=[code, source("data", input_data, "/opt/ml/processing/input/data")],
        outputs=[sink("train", "/opt/ml/processing/prepared/train"), sink("test", "/opt/ml/processing/prepared/test")],
        arguments=["--input", "/opt/ml/processing/input/data", "--output", "/opt/ml/processing/prepared"],
    ))

    def prepared(name: str) -> Any:
        return prepare.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    trainer = ModelTrainer(
        sagemaker_session=session, role=PLACEHOLDER_ROLE_ARN, training_image=image, base_job_name="fidelio-train",
        compute=Compute(instance_type=training_instance, instance_count=1),
        # No source_code: ModelTrainer would upload it. The image's training toolkit fetches the
        # archive itself (JSON-encoded values, as the toolkit decodes them).
        hyperparameters={"sagemaker_program": json.dumps(TRAIN_PROGRAM),
                         "sagemaker_submit_directory": json.dumps(PLACEHOLDER_CODE_URI)},
        output_data_config=OutputDataConfig(s3_output_path=_s3("models"), kms_key_id=PLACEHOLDER_KMS_KEY_ARN),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_S),
    )
    train = TrainingStep(name="Train", step_args=trainer.train(
        input_data_config=[InputData(channel_name="train", data_source=prepared("train"))]))
    model_artifacts = train.properties.ModelArtifacts.S3ModelArtifacts

    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path=steps.EVALUATION_FILE)
    evaluate = ProcessingStep(name="Evaluate", property_files=[evaluation], step_args=processor(
        "functions.training.evaluate").run(
        inputs=[code, source("candidate", model_artifacts, "/opt/ml/processing/candidate"),
                source("test", prepared("test"), "/opt/ml/processing/test")],
        outputs=[sink("evaluation", "/opt/ml/processing/evaluation")],
        arguments=["--candidate-dir", "/opt/ml/processing/candidate", "--test-dir", "/opt/ml/processing/test",
                   "--out", f"/opt/ml/processing/evaluation/{steps.EVALUATION_FILE}", *registry_args,
                   "--min-auc-gain", min_auc_gain.to_string(),
                   "--calibration-tolerance", calibration_tolerance.to_string(),
                   "--min-ope-value", min_ope_value.to_string()],
    ))

    def figure(path: str) -> Any:
        return JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)

    evaluation_uri = Join(on="/", values=[
        evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, steps.EVALUATION_FILE])
    builder = ModelBuilder(image_uri=sklearn_image_uri(settings.region, "inference"),
                           s3_model_data_url=model_artifacts, role_arn=PLACEHOLDER_ROLE_ARN, sagemaker_session=session)
    register = ModelStep(name="Register", step_args=builder.register(
        model_package_group_name=settings.model_package_group,
        content_types=["application/json"], response_types=["application/json"],
        inference_instances=[DEFAULT_INSTANCE_TYPE], transform_instances=[DEFAULT_INSTANCE_TYPE],
        approval_status=approval_status,
        model_metrics=ModelMetrics(model_statistics=MetricsSource(s3_uri=evaluation_uri,
                                                                  content_type="application/json")),
        description="Fidelio offer model: model.onnx + its model card (metadata.json) in model.tar.gz",
        customer_metadata_properties={"format": "onnx", "model_card": "metadata.json"},
    ))
    promote = ProcessingStep(name="Promote", depends_on=[register], step_args=processor(
        "functions.training.promote").run(
        inputs=[code, source("candidate", model_artifacts, "/opt/ml/processing/candidate")],
        arguments=["--candidate-dir", "/opt/ml/processing/candidate", *registry_args,
                   "--approval-status", approval_status, "--initial-share", initial_share.to_string()],
    ))
    refused = FailStep(name="Refused", error_message=Join(on=" ", values=[
        "The evaluation gate kept the champion:", figure(steps.GATE_REASON)]))
    gate = ConditionStep(
        name="Gate",
        conditions=[
            ConditionGreaterThanOrEqualTo(left=figure(steps.GATE_CANDIDATE_AUC), right=figure(steps.GATE_REQUIRED_AUC)),
            ConditionLessThanOrEqualTo(left=figure(steps.GATE_CANDIDATE_BRIER), right=figure(steps.GATE_MAX_BRIER)),
            ConditionGreaterThanOrEqualTo(left=figure(steps.GATE_CANDIDATE_OPE_LOW),
                                          right=figure(steps.GATE_CHAMPION_OPE)),
            ConditionGreaterThanOrEqualTo(left=figure(steps.GATE_CANDIDATE_OPE_LOW), right=min_ope_value),
        ],
        if_steps=[register, promote],
        else_steps=[refused],
    )
    pipeline = Pipeline(name=settings.pipeline_name, parameters=parameters,
                        steps=[prepare, train, evaluate, gate], sagemaker_session=session)
    return str(pipeline.definition())


def bind(definition: Mapping[str, Any], values: Mapping[str, str]) -> str:
    """The definition as JSON with each placeholder replaced (by CDK token strings at synth)."""
    text = json.dumps(definition, sort_keys=True)
    for placeholder, value in values.items():
        if placeholder not in text:
            raise PipelineDefinitionError(f"placeholder {placeholder} is not in the pipeline definition")
        text = text.replace(placeholder, value)
    return text


# --- the code archive ------------------------------------------------------------------------


def container_requirements(lock_path: Path) -> str:
    """requirements.txt for the containers: CONTAINER_REQUIREMENTS at uv.lock's versions."""
    locked = {package["name"]: package["version"] for package in tomllib.loads(lock_path.read_text())["package"]
              if "version" in package}
    missing = [name for name in CONTAINER_REQUIREMENTS if name not in locked]
    if missing:
        raise PipelineDefinitionError(f"{missing} not in {lock_path}: the training extra must pin them")
    return "".join(f"{name}=={locked[name]}\n" for name in CONTAINER_REQUIREMENTS)


def _archive_files(repo_root: Path) -> list[tuple[str, Path]]:
    files = []
    for source in ARCHIVE_SOURCES:
        for path in sorted((repo_root / source).rglob("*")):
            relative = path.relative_to(repo_root)
            if path.is_file() and not ARCHIVE_EXCLUDED_PARTS & set(relative.parts) and path.suffix != ".pyc":
                files.append((relative.as_posix(), path))
    return files


def build_code_archive(repo_root: Path, out_path: Path) -> Path:
    """functions/, fidelio/, the bundled champion and requirements.txt as a tar.gz that is the
    same bytes for the same sources (fixed order, times and owners): the asset hash, hence the
    pipeline definition, changes only when the code does."""
    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "requirements.txt", container_requirements(repo_root / "uv.lock").encode())
        for name, path in _archive_files(repo_root):
            add(tar, name, path.read_bytes())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed: a synth running at the same time never reads half an archive.
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}")
    with partial.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
        compressed.write(buffer.getvalue())
    partial.replace(out_path)
    return out_path
