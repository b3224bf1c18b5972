"""The serving config: validation, sticky and monotone assignment, the TTL cache; and the
rollout guardrails computed from decision records."""

from __future__ import annotations

import pytest

from fidelio import rollout
from functions.dal.serving_config import (
    InvalidServingConfig,
    ServingConfig,
    ServingConfigCache,
    parse_config,
    variant_for,
)


class FakeSsm:
    """Parameter Store holding one parameter; counts reads."""

    class exceptions:
        class ParameterNotFound(Exception):
            pass

    def __init__(self) -> None:
        self.value: str | None = None
        self.reads = 0

    def get_parameter(self, Name: str) -> dict:
        self.reads += 1
        if self.value is None:
            raise self.exceptions.ParameterNotFound(Name)
        return {"Parameter": {"Value": self.value}}


def test_a_bad_config_is_refused_with_what_is_wrong():
    with pytest.raises(InvalidServingConfig, match="challenger_share"):
        parse_config('{"champion": "a", "challenger": "b", "challenger_share": 1.5}')
    with pytest.raises(InvalidServingConfig, match="needs a challenger"):
        parse_config('{"champion": "a", "challenger_share": 0.1}')
    with pytest.raises(InvalidServingConfig, match="already the champion"):
        parse_config('{"champion": "a", "challenger": "a", "challenger_share": 0.1}')
    with pytest.raises(InvalidServingConfig):
        parse_config("not json")


def test_assignment_is_sticky_near_the_share_and_monotone_as_it_grows():
    members = [f"m{i}" for i in range(20_000)]
    shares = (0.05, 0.25, 0.5)
    assigned = {s: {m for m in members if variant_for(m, ServingConfig(champion="a", challenger="b",
                                                                        challenger_share=s), "salt")
                    == "challenger"} for s in shares}
    # Given the same config twice, the same members are challengers (sticky)
    again = {m for m in members if variant_for(m, ServingConfig(champion="a", challenger="b", challenger_share=0.05),
                                               "salt") == "challenger"}
    assert again == assigned[0.05]
    # The shares are met within sampling error, and a step only adds members (monotone)
    for share in shares:
        assert abs(len(assigned[share]) / len(members) - share) < 0.01
    assert assigned[0.05] <= assigned[0.25] <= assigned[0.5]
    # No config, or no challenger: everyone is served by the champion
    assert variant_for("m1", None, "salt") == "champion"
    assert variant_for("m1", ServingConfig(champion="a"), "salt") == "champion"


def test_the_cache_reads_the_parameter_once_per_ttl():
    ssm, now = FakeSsm(), [0.0]
    cache = ServingConfigCache(ssm, "/p", ttl_s=60, clock=lambda: now[0])
    # Given no parameter: None (the bundled model serves)
    assert cache.get() is None
    ssm.value = ServingConfig(champion="v2").model_dump_json()
    now[0] = 59.0
    assert cache.get() is None and ssm.reads == 1  # still cached
    now[0] = 60.0
    assert cache.get() == ServingConfig(champion="v2") and ssm.reads == 2


def test_an_unreadable_parameter_keeps_the_last_config_for_another_ttl():
    ssm, now = FakeSsm(), [0.0]
    ssm.value = ServingConfig(champion="v2").model_dump_json()
    cache = ServingConfigCache(ssm, "/p", ttl_s=60, clock=lambda: now[0])
    assert cache.get() == ServingConfig(champion="v2")
    ssm.value = "{broken"
    now[0] = 61.0
    with pytest.raises(InvalidServingConfig):
        cache.get()
    # The caller (decide) holds the last good config and does not retry at every batch
    assert cache.hold() == ServingConfig(champion="v2")
    now[0] = 100.0
    assert cache.get() == ServingConfig(champion="v2") and ssm.reads == 2


def _record(variant: str, status: str = "no_send", outcomes: tuple[str, ...] = (), holdout: bool = False) -> dict:
    return {"body": {"variant": variant, "model_version": f"{variant}-v"}, "status": status,
            "outcomes": list(outcomes), "holdout": holdout}


def test_guardrails_refuse_without_enough_data_and_name_the_failing_metric():
    rules = rollout.Guardrails(min_decisions=100)
    records = [_record("champion", "sent", ("clicked",) if i % 10 == 0 else ()) for i in range(200)]
    # Given only 50 challenger decisions: not enough, whatever they show
    few = records + [_record("challenger", "sent") for _ in range(50)]
    verdict = rollout.check(rollout.variant_metrics(few), rules)
    assert not verdict.enough and not verdict.ok
    assert "challenger has 50 decisions (needs 100)" in verdict.reasons[0]
    # Given as good a challenger: every guardrail holds
    good = records + [_record("challenger", "sent", ("clicked",) if i % 10 == 0 else ()) for i in range(200)]
    assert rollout.check(rollout.variant_metrics(good), rules).ok
    # Given a challenger with unsubscribes and fewer conversions: both are named
    bad = records + [_record("challenger", "sent", ("unsubscribed",) if i % 20 == 0 else ()) for i in range(200)]
    verdict = rollout.check(rollout.variant_metrics(bad), rules)
    assert verdict.enough and not verdict.ok
    assert any(r.startswith("conversion 0.0000 < champion 0.1000") for r in verdict.reasons)
    assert any(r.startswith("unsubscribe rate 0.0500 > champion 0.0000") for r in verdict.reasons)
    # Holdout decisions are not counted
    assert rollout.variant_metrics([_record("champion", holdout=True)]) == {}


def test_steps_go_5_25_50_then_full():
    assert [rollout.next_step(s) for s in (0.05, 0.25, 0.5)] == [0.25, 0.5, 1.0]
    assert rollout.next_step(0.1) == 0.25
