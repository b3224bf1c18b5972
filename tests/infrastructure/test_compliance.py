"""cdk-nag (AWS Solutions) and cfn-lint have nothing to say about the stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from infra.app import build_app

if TYPE_CHECKING:
    from aws_cdk import App

    from infra.stack import FidelioStack

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def test_cdk_nag_aws_solutions_reports_no_unacknowledged_finding(
    fidelio_app: tuple[App, FidelioStack],
) -> None:
    from cdk_nag import AwsSolutionsChecks

    # Given the app
    app, _ = fidelio_app
    # When the AWS Solutions pack checks the whole construct tree
    report = AwsSolutionsChecks().validate_scope(app)
    # Then every finding was fixed or acknowledged with a reason
    findings = [
        (violation.rule_name, [r.construct_path for r in violation.violating_resources])
        for violation in report.violations
    ]
    assert findings == []


def acknowledgments(app: App) -> dict[str, dict[str, str]]:
    """{construct path: {rule id: reason}} as recorded in construct metadata."""
    from aws_cdk import Validations

    found: dict[str, dict[str, str]] = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule_id, reason in dict(entry.data).items():
                    found.setdefault(construct.node.path, {})[rule_id.removeprefix("Annotation::")] = reason
    return found


def test_every_acknowledgment_gives_a_reason(fidelio_app: tuple[App, FidelioStack]) -> None:
    # Given the acknowledged cdk-nag findings
    found = acknowledgments(fidelio_app[0])
    assert found, "expected the documented acknowledgments"
    for path, rules in found.items():
        for rule_id, reason in rules.items():
            # Then each says why, at some length
            assert len(reason) >= 40, (path, rule_id)
            # and belongs to the families docs/infrastructure.md explains
            assert rule_id.split("[")[0] in {
                "AwsSolutions-IAM5",
                "AwsSolutions-L1",
                "AwsSolutions-S1",
                "AwsSolutions-SMG4",
            }, (path, rule_id)


def test_cfn_lint_finds_nothing_in_the_template(template_file: Path) -> None:
    # Given the synthesized template
    # When cfn-lint checks it for eu-west-1 (W3005: CDK's redundant DependsOn, harmless)
    result = subprocess.run(
        [str(CFN_LINT), "--regions", "eu-west-1", "--ignore-checks", "W3005", "--", str(template_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # Then it reports nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_app_refuses_to_synthesize_an_unacknowledged_finding(
    placeholder_build: Path, tmp_path: Path
) -> None:
    from aws_cdk import aws_sqs as sqs

    from infra.constructs.functions import LambdaAssets

    # Given the app as app.py builds it (cdk-nag registered as a validation plugin)
    app, stack = build_app(assets=LambdaAssets.from_build_dir(placeholder_build), outdir=str(tmp_path))
    # and a queue added without a DLQ, TLS or encryption
    sqs.Queue(stack, "CarelessQueue", encryption=sqs.QueueEncryption.UNENCRYPTED)
    # When synthesizing
    # Then synthesis stops and the report names the queue
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert "CarelessQueue" in json.dumps(report)
