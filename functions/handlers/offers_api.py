"""offers_api: `GET /members/{member_id}/offers?limit=k` behind a Lambda Function URL (IAM auth,
payload format 2.0) — the member's offers for an in-app placement, ranked by the same engine
as messages, recorded once per member and day as a decision, returned as JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.utilities.data_classes import LambdaFunctionUrlEvent
from pydantic import TypeAdapter, ValidationError

from functions import clock
from functions.dal.catalog import load_catalog
from functions.dal.decisions import record_decision
from functions.dal.members import load_profile
from functions.dal.offers import catalog_version
from functions.domain.events import Identifier
from functions.domain.features import CatalogArrays
from functions.domain.placements import Placement, rank_offers
from functions.handlers import init_done
from functions.handlers.decide import policy_config, scorer
from functions.handlers.deps import deps
from functions.observability import count, logger, metrics, tracer

DEFAULT_LIMIT = 5
MAX_LIMIT = 20
_PATH = re.compile(r"/members/(?P<member_id>[^/]+)/offers/?")
_LIMIT = re.compile(r"[0-9]{1,3}")
_MEMBER_ID: TypeAdapter[str] = TypeAdapter(Identifier)
_HEADERS = {"Content-Type": "application/json", "Cache-Control": "private, no-store"}


class BadRequest(ValueError):
    """The request cannot be served as asked (a malformed path or limit)."""


class MethodNotAllowed(ValueError):
    """Only GET is served."""


@dataclass(frozen=True)
class OffersRequest:
    member_id: str
    limit: int


def _quoted(text: str, most: int = 80) -> str:
    return repr(text if len(text) <= most else text[:most] + "...")


def parse_request(event: LambdaFunctionUrlEvent) -> OffersRequest:
    try:
        method = event.request_context.http.method
    except (KeyError, TypeError, AttributeError):
        raise BadRequest("not a Function URL request (payload format 2.0)") from None
    if method != "GET":
        raise MethodNotAllowed(f"method {method} not allowed; use GET /members/{{member_id}}/offers")
    match = _PATH.fullmatch(event.raw_path or "")
    if match is None:
        raise BadRequest(f"expected /members/{{member_id}}/offers, got path {_quoted(event.raw_path or '')}")
    try:
        # Function URLs pass the path as sent: a client may percent-encode ':' or '@'.
        member_id = _MEMBER_ID.validate_python(unquote(match["member_id"]))
    except ValidationError:
        raise BadRequest(
            f"malformed member id {_quoted(match['member_id'])}: 1-128 of A-Z a-z 0-9 _ . : @ -"
        ) from None
    raw_limit = (event.query_string_parameters or {}).get("limit")
    if raw_limit is None:
        return OffersRequest(member_id, DEFAULT_LIMIT)
    if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {_quoted(raw_limit, 20)}")
    return OffersRequest(member_id, int(raw_limit))


def response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {**_HEADERS, **(headers or {})}, "body": json.dumps(body)}


def placement_body(placement: Placement) -> dict[str, Any]:
    return {
        "member_id": placement.member_id,
        "decision_id": placement.decision_id,
        "model_version": placement.model_version,
        "offers": [
            {"offer_id": o.offer_id, "title": o.title, "score": round(o.probability, 6),
             "expected_value": round(o.expected_value, 6), "reasons": list(o.reasons)}
            for o in placement.offers
        ],
    }


_versioned: tuple[CatalogArrays, str] | None = None


def _catalog_version(catalog: CatalogArrays) -> str:
    """Content hash of the catalog served; load_catalog hands out the same object for a while."""
    global _versioned
    if _versioned is None or _versioned[0] is not catalog:
        _versioned = (catalog, catalog_version(catalog.offers))
    return _versioned[1]


def serve(request: OffersRequest) -> dict[str, Any]:
    d = deps()
    profile = load_profile(request.member_id)
    if profile is None:
        return response(404, {"error": f"no member {request.member_id}"})
    catalog = load_catalog()
    placement = rank_offers(profile, catalog, scorer(), clock.now(), request.limit, policy_config(),
                            catalog_version=_catalog_version(catalog))
    # First placement of the member's day is stored; the same id served again is not rewritten.
    recorded = record_decision(placement.as_decision(), d.settings.decision_ttl_days)
    count("Placements")
    logger.info("served in-app placement", extra={
        "member_id": placement.member_id, "decision_id": placement.decision_id,
        "model_version": placement.model_version, "catalog_version": placement.catalog_version,
        "limit": request.limit, "holdout": placement.holdout, "recorded": recorded,
        "considered": placement.considered, "allowed": placement.allowed, "rejected": placement.rejected,
        "offers": [{"offer_id": o.offer_id, "ev": round(o.expected_value, 6)} for o in placement.offers],
    })
    return response(200, placement_body(placement))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        request = parse_request(LambdaFunctionUrlEvent(event))
    except MethodNotAllowed as error:
        return response(405, {"error": str(error)}, {"Allow": "GET"})
    except BadRequest as error:
        return response(400, {"error": str(error)})
    try:
        return serve(request)
    except Exception:
        # Still a JSON answer for the app; the log (and the trace) keep the cause.
        logger.exception("could not serve the placement")
        count("PlacementFailures")
        return response(500, {"error": "could not rank offers now; retry later"})


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
