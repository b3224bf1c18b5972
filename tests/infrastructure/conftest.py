"""One synthesized FidelioStack for the whole folder (synthesis costs seconds, reading is free).

Lambda assets are small placeholder folders: these tests never run pip. The CDK is imported
inside fixtures, so collecting this folder (e.g. for `-m "not infrastructure"`) stays cheap."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.stack import FidelioStack

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.infrastructure)


def make_placeholder_build(root: Path) -> Path:
    """The layout `python -m infra.bundle` writes, with one small file in each asset."""
    (root / "code" / "functions").mkdir(parents=True)
    (root / "code" / "functions" / "__init__.py").write_text("")
    for layer in ("layer-core", "layer-numpy", "layer-ml"):
        (root / layer / "python").mkdir(parents=True)
        (root / layer / "python" / "placeholder.txt").write_text(layer)
    return root


@pytest.fixture(scope="session")
def placeholder_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_placeholder_build(tmp_path_factory.mktemp("lambda-build"))


@pytest.fixture(scope="session")
def fidelio_app(
    placeholder_build: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[App, FidelioStack]:
    from infra.app import build_app
    from infra.constructs.functions import LambdaAssets

    # cdk-nag runs in its own test (validate_scope), so one finding does not fail them all.
    return build_app(
        assets=LambdaAssets.from_build_dir(placeholder_build),
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
        with_nag=False,
    )


@pytest.fixture(scope="session")
def stack(fidelio_app: tuple[App, FidelioStack]) -> FidelioStack:
    return fidelio_app[1]


@pytest.fixture(scope="session")
def template(stack: FidelioStack) -> Template:
    from aws_cdk.assertions import Template

    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def template_json(template: Template) -> dict[str, Any]:
    return dict(template.to_json())


@pytest.fixture(scope="session")
def template_file(template_json: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "FidelioStack.template.json"
    path.write_text(json.dumps(template_json, indent=1))
    return path


def logical_id(stack: FidelioStack, construct: Any) -> str:
    return str(stack.resolve(stack.get_logical_id(construct.node.default_child)))


@pytest.fixture(scope="session")
def function_ids(stack: FidelioStack) -> dict[str, str]:
    return {name: logical_id(stack, fn) for name, fn in stack.functions.functions.items()}


@pytest.fixture(scope="session")
def queue_ids(stack: FidelioStack) -> dict[str, tuple[str, str]]:
    """{logical queue name: (queue logical id, its DLQ's logical id)}"""
    return {q.spec.logical_name: (logical_id(stack, q.queue), logical_id(stack, q.dlq)) for q in stack.queues}


@pytest.fixture(scope="session")
def table_ids(stack: FidelioStack) -> dict[str, str]:
    return {name: logical_id(stack, table) for name, table in stack.tables.items()}
