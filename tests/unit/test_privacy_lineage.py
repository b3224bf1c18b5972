"""Erasure lineage on a real training run: the pipeline's train step records, in the model
card, a filter of the (pseudonymized) members whose rows trained the model."""

from __future__ import annotations

import json
from pathlib import Path

from fidelio import pipeline_steps as steps
from functions.domain import privacy as pv
from tests.unit.test_training_steps import write_export


def test_the_model_card_knows_which_members_trained_the_model(tmp_path: Path) -> None:
    # Given an exported decision log, split in time, and a model trained on the earlier part
    export = write_export(tmp_path / "export", decisions=600)
    steps.prepare_training_set(export, tmp_path / "prepared")
    steps.train(tmp_path / "prepared" / "train", tmp_path / "model", rounds=10)
    card = json.loads((tmp_path / "model" / "metadata.json").read_text())
    trained = {str(r["member"]) for r in steps.read_export_dir(tmp_path / "prepared" / "train")}
    held_out = {str(r["member"]) for r in steps.read_export_dir(tmp_path / "prepared" / "test")} - trained
    # Then every member of the training rows is reported as trained on
    assert trained and all(pv.card_may_include(card, m) for m in trained)
    # and members who were never in them almost never are (Bloom false positives only)
    strangers = [pv.pseudonym(f"stranger-{i}", "salt") for i in range(2000)] + sorted(held_out)
    assert sum(bool(pv.card_may_include(card, s)) for s in strangers) / len(strangers) < 0.03
    # and the card holds no pseudonym itself
    assert not any(m in json.dumps(card) for m in trained)
