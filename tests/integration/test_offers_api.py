"""The in-app offers API on moto: a Function URL request (payload 2.0) in, the member's ranked
offers with reasons and a decision id out, the placement recorded once in the decisions table."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fidelio.local.runner import LocalRunner
from functions.dal.members import import_history
from functions.dal.offers import replace_catalog
from functions.dal.tables import DecisionRecord
from functions.domain import events as ev
from functions.domain.decision import PriorScorer
from functions.domain.offers import Offer
from functions.handlers import decide, deps
from tests.conftest import canonical_event

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # the local_stack fixture's clock


def offers_request(path: str, limit: str | None = None, method: str = "GET") -> dict[str, Any]:
    """The canonical Function URL event with another path, limit or method."""
    event = copy.deepcopy(canonical_event("function_url/get_offers"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["queryStringParameters"] = None if limit is None else {"limit": limit}
    event["rawQueryString"] = "" if limit is None else f"limit={limit}"
    return event


def _call(runner: LocalRunner, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = runner.invoke("offers_api", event)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def api(local_stack: Any, tmp_path: Path) -> LocalRunner:
    """The local stack with a catalog and a member who buys coffee, scored by the prior (no
    model in model_dir) so that the ranking follows from the member's history alone."""
    runner = LocalRunner(local_stack)
    runner.update_settings("offers_api", model_dir=str(tmp_path))
    decide.reset_model()
    deps.use(runner._deps["offers_api"])
    replace_catalog([
        Offer(offer_id="wine-10", title="10% off wine", categories=["wine"], value=3),
        Offer(offer_id="coffee-10", title="10% off coffee", categories=["coffee"], value=3),
        Offer(offer_id="gold-lounge", title="Gold lounge pass", value=9, tiers=["gold"]),
        Offer(offer_id="winter-sale", title="Winter sale", value=9, starts_at=NOW - timedelta(days=60),
              ends_at=NOW - timedelta(days=1)),
    ])
    member = "m-coffee"
    history: list[ev.MemberEvent] = [
        ev.MemberEnrolled(event_id=f"{member}-e", member_id=member, occurred_at=NOW - timedelta(days=90),
                          time_zone="Europe/Paris", email="ann@example.com", first_name="Ann"),
    ]
    history += [
        ev.PurchaseCompleted(event_id=f"{member}-p{i}", member_id=member, occurred_at=NOW - timedelta(days=7 * i + 1),
                             order_id=f"o-{i}", amount=12.0,
                             line_items=[ev.LineItem(product_id="beans", category="coffee", unit_price=12)])
        for i in range(4)
    ]
    import_history(history)
    return runner


def test_a_coffee_buyer_gets_the_coffee_offer_first_with_a_reason(api: LocalRunner) -> None:
    # Given a member who buys coffee, a coffee and a wine offer of the same value, a gold-only
    # offer and an expired one
    # When the app asks for three offers
    status, body = _call(api, offers_request("/members/m-coffee/offers", "3"))
    # Then the coffee offer comes first, with a reason a person can read
    assert status == 200
    assert set(body) == {"member_id", "decision_id", "model_version", "offers"}
    assert body["member_id"] == "m-coffee" and body["model_version"] == PriorScorer.version
    assert [o["offer_id"] for o in body["offers"]] == ["coffee-10", "wine-10"]  # guardrails drop the rest
    top = body["offers"][0]
    assert top["title"] == "10% off coffee"
    assert "you often buy coffee" in top["reasons"]
    assert top["score"] > body["offers"][1]["score"]
    assert top["expected_value"] == pytest.approx(3 * top["score"], rel=1e-4)
    # and the placement is recorded once, as a decision that sends nothing
    record = DecisionRecord.get(body["decision_id"])
    assert record.trigger == "in_app_offers" and record.status == "no_send"
    assert [t["offer_id"] for t in record.body["top"]] == ["coffee-10", "wine-10"]
    assert record.body["propensity"] == 1.0
    # When the app asks again the same day
    status, again = _call(api, offers_request("/members/m-coffee/offers"))
    # Then the same decision id comes back and no second record is written
    assert status == 200 and again["decision_id"] == body["decision_id"]
    assert [r.decision_id for r in DecisionRecord.scan()] == [body["decision_id"]]


UNSERVABLE = [
    (offers_request("/members/nobody/offers"), 404, "no member nobody"),
    (offers_request("/members/m-coffee/offers", "0"), 400, "limit must be a whole number from 1 to 20"),
    (offers_request("/members/m-coffee/offers", "21"), 400, "limit must be"),
    (offers_request("/members/m-coffee/offers", "three"), 400, "limit must be"),
    (offers_request("/members/m-coffee/offers", "3,4"), 400, "limit must be"),  # ?limit=3&limit=4
    (offers_request("/members/m-coffee"), 400, "expected /members/{member_id}/offers"),
    (offers_request("/members/a/b/offers"), 400, "expected /members/{member_id}/offers"),
    (offers_request("/members/bad%20id/offers"), 400, "malformed member id"),
    (offers_request("/members/m-coffee/offers", method="POST"), 405, "method POST not allowed"),
    (offers_request("/members/m-coffee/offers", method="DELETE"), 405, "use GET"),
]


def test_requests_that_cannot_be_served_get_a_json_error(api: LocalRunner) -> None:
    for event, status, says in UNSERVABLE:
        # When the API gets a request it cannot serve
        response = api.invoke("offers_api", event)
        # Then the status says why, in JSON, with one line a developer can act on
        assert response["statusCode"] == status, (event["rawPath"], response)
        assert response["headers"]["Content-Type"] == "application/json"
        error = json.loads(response["body"])["error"]
        assert says in error and "\n" not in error, error
        if status == 405:
            assert response["headers"]["Allow"] == "GET"
    # and nothing is recorded
    assert list(DecisionRecord.scan()) == []
