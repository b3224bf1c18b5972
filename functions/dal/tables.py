"""DynamoDB tables through pynamodb. Table names and the endpoint come from settings:
`bind_tables(settings)` points every model at them (once per container, or per test)."""

from __future__ import annotations

import json
import zlib
from typing import Any

import botocore.session
from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.constants import BINARY, STRING
from pynamodb.exceptions import AttributeDeserializationError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from functions.settings import Settings


class CompressedJSONAttribute(Attribute[Any]):
    """JSON, zlib-compressed, stored as binary. A member profile is about 4.2 KB of JSON and
    1.4 KB compressed: every profile write (one per member event) costs 3 WRU instead of 6 and a
    strong read 1 RRU instead of 2 (docs/cost.md). Items written before, with the profile as a
    JSON string, are still read; the next write stores them compressed."""

    attr_type = BINARY

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        return zlib.compress(json.dumps(value, separators=(",", ":")).encode("utf-8"), 6)

    def get_value(self, value: dict[str, Any]) -> Any:
        for kind in (BINARY, STRING):
            if kind in value:
                return value[kind]
        raise AttributeDeserializationError(self.attr_name, self.attr_type)

    def deserialize(self, value: bytes | str) -> Any:
        if isinstance(value, str):  # written before compression
            return json.loads(value, strict=False)
        return json.loads(zlib.decompress(value))


class MemberRecord(Model):
    """One item per member: the profile (JSON) and the events it absorbed (exactly-once)."""

    class Meta:
        table_name = "fidelio-members"
        region = "eu-west-1"
        billing_mode = "PAY_PER_REQUEST"

    member_id = UnicodeAttribute(hash_key=True)
    profile = CompressedJSONAttribute()
    # "<event id>/<epoch second>" of the last events applied (functions/domain/applied_events.py),
    # space-separated: one short string is far cheaper to read and write than a list.
    recent_events = UnicodeAttribute(default="")
    # Events that occurred before this epoch second are not applied (duplicates or too late).
    events_floor = NumberAttribute(default=0)
    updated_at = NumberAttribute(default=0)
    version = VersionAttribute()
    # Daily batch scores (score_members), written by an update expression on these attributes
    # alone; functions.dal.members lays them over the profile when reading it.
    churn_risk = NumberAttribute(null=True)
    clv = NumberAttribute(null=True)
    scores_at = NumberAttribute(null=True)


class DecisionsByMember(GlobalSecondaryIndex["DecisionRecord"]):
    """A member's decision keys (KEYS_ONLY, infra/spec.py): a query returns decision_id,
    member_id and decided_at only, every other attribute at its default. Fetch the items by
    key (functions.dal.privacy.member_decisions)."""

    class Meta:
        index_name = "by_member"
        projection = KeysOnlyProjection()

    member_id = UnicodeAttribute(hash_key=True)
    decided_at = NumberAttribute(range_key=True)


class DecisionRecord(Model):
    """One decision: what was considered, what was chosen, why, and what happened."""

    class Meta:
        table_name = "fidelio-decisions"
        region = "eu-west-1"
        billing_mode = "PAY_PER_REQUEST"

    decision_id = UnicodeAttribute(hash_key=True)
    member_id = UnicodeAttribute()
    decided_at = NumberAttribute()
    expires_at = NumberAttribute()  # TTL (epoch seconds)
    trigger = UnicodeAttribute()
    trigger_event_id = UnicodeAttribute()
    body = JSONAttribute()  # the full decision (see functions.domain.decision.Decision)
    holdout = BooleanAttribute(default=False)
    status = UnicodeAttribute(default="decided")
    send_at = NumberAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    outcomes = ListAttribute(of=UnicodeAttribute, default=list)
    by_member = DecisionsByMember()


class LedgerRecord(Model):
    """Small per-key records: send claims (claim#<decision>), consent history
    (member#<id> / consent#<time>#<event>)."""

    class Meta:
        table_name = "fidelio-ledger"
        region = "eu-west-1"
        billing_mode = "PAY_PER_REQUEST"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    body = JSONAttribute(null=True)
    created_at = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True)


class OfferRecord(Model):
    class Meta:
        table_name = "fidelio-offers"
        region = "eu-west-1"
        billing_mode = "PAY_PER_REQUEST"

    offer_id = UnicodeAttribute(hash_key=True)
    body = JSONAttribute()
    catalog_version = UnicodeAttribute()


ALL_MODELS: dict[str, type[Model]] = {
    "members_table": MemberRecord,
    "decisions_table": DecisionRecord,
    "ledger_table": LedgerRecord,
    "offers_table": OfferRecord,
}


_bound: tuple[str | None, ...] | None = None


def bind_tables(settings: Settings, session: botocore.session.Session | None = None) -> None:
    """Point every model at the settings' tables and endpoint (drops cached connections,
    only when something changed: a new connection costs a botocore client). `session`: the
    botocore session of the function's other clients (functions.dal.clients.AwsClients), so
    the DynamoDB client does not load endpoint data and service models in a session of its own."""
    global _bound
    wanted = (settings.region, settings.endpoint_url, *(getattr(settings, f) for f in ALL_MODELS))
    if wanted == _bound:
        return
    _bound = wanted
    for field_name, model in ALL_MODELS.items():
        meta: Any = model.Meta
        meta.table_name = getattr(settings, field_name)
        meta.region = settings.region
        meta.host = settings.endpoint_url
        model._connection = None
    shared = None  # one DynamoDB client for every model (saves ~100 ms a cold start)
    for model in ALL_MODELS.values():
        connection: Any = model._get_connection().connection
        if session is not None:
            connection._local.session = session  # pynamodb's per-thread session (see Connection.session)
        shared = shared or connection.client
        connection._client = shared
