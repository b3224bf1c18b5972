"""The pure parts of GDPR access and erasure: pseudonyms, finding a member's rows, the Bloom
filter a model card keeps of its training members, and the erasure receipt."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from functions.domain import privacy as pv

SALT = "test-salt"


def test_a_pseudonym_is_stable_keyed_and_matches_the_training_export():
    # Given one member id
    # Then its pseudonym is the same each time, differs under another salt,
    a = pv.pseudonym("m-42", SALT)
    assert a == pv.pseudonym("m-42", SALT) and a != pv.pseudonym("m-42", "other-salt")
    assert a != pv.pseudonym("m-43", SALT) and "m-42" not in a
    # and is exactly what the training export writes (so erased members match training rows)
    training_export = pytest.importorskip("fidelio.training_export")
    assert a == training_export.pseudonymize("m-42", SALT)


def test_an_empty_member_id_or_salt_is_refused_with_a_reason():
    with pytest.raises(pv.PrivacyRequestError, match="member id"):
        pv.pseudonym("", SALT)
    with pytest.raises(pv.PrivacyRequestError, match="salt"):
        pv.pseudonym("m-1", "")


def test_a_row_is_the_members_when_any_value_at_any_depth_is_an_identifier():
    needles = frozenset({"m-1", "ann@example.com"})
    assert pv.mentions({"member_id": "m-1"}, needles)
    assert pv.mentions({"detail": {"contacts": [{"email": "ann@example.com"}]}}, needles)
    # a longer id that merely contains the member's is someone else
    assert not pv.mentions({"member_id": "m-10", "note": "m-1x"}, needles)
    assert not pv.mentions({"n": 1, "flag": True, "none": None}, needles)


def test_member_lines_are_removed_and_the_others_kept_byte_for_byte():
    ids = pv.MemberIdentifiers("m-1", pv.pseudonym("m-1", SALT), ("ann@example.com", "+33611111111"))
    lines = [
        json.dumps({"member_id": "m-2", "x": 1}),
        json.dumps({"member_id": "m-1", "x": 2}),
        json.dumps({"member_id": "m-10", "note": "mentions m-1 in prose only"}),
        "not json but has +33611111111",
        json.dumps({"member": ids.pseudonym}),
    ]
    kept, removed = pv.without_member_lines("\n".join(lines).encode(), ids)
    assert removed == 3
    assert kept.decode().splitlines() == [lines[0], lines[2]]
    assert pv.rows_mentioning("\n".join(lines).encode(), ids) == [{"member_id": "m-1", "x": 2},
                                                                  {"member": ids.pseudonym}]


def test_contact_points_count_even_inside_a_text_but_names_only_as_whole_values():
    ids = pv.identifiers_from_profile("m-1", "p-1", {"email": "ann@example.com", "first_name": "Ann",
                                                      "phone": None})
    assert ids.contact == ("ann@example.com",) and ids.names == ("Ann",)
    assert pv.row_is_members({"text": "reply to ann@example.com please"}, ids)
    assert pv.row_is_members({"greeting": "Ann"}, ids)
    assert not pv.row_is_members({"title": "Annual sale"}, ids)


def test_the_training_member_filter_never_misses_a_member_and_rarely_claims_a_stranger():
    # Given a card built from 2,000 pseudonymized training members
    members = [pv.pseudonym(f"m-{i}", SALT) for i in range(2000)]
    card = {"name": "offers", "model_version": "v1", pv.TRAINING_MEMBERS_KEY: pv.training_members_entry(members)}
    card = json.loads(json.dumps(card))  # as stored in metadata.json
    # Then every training member is reported (no false negatives)
    assert all(pv.card_may_include(card, m) for m in members)
    # and strangers are reported at about the stated false-positive rate
    strangers = [pv.pseudonym(f"x-{i}", SALT) for i in range(5000)]
    rate = sum(bool(pv.card_may_include(card, s)) for s in strangers) / len(strangers)
    assert rate < 0.02
    assert card[pv.TRAINING_MEMBERS_KEY]["false_positive_rate"] < 0.02
    # and a card that does not record its members is "unknown", not "no"
    assert pv.card_may_include({"name": "offers", "model_version": "cj"}, members[0]) is None


def test_lineage_sorts_model_versions_by_whether_they_saw_the_member():
    gone = pv.pseudonym("m-gone", SALT)
    cards = [
        ("a", {"name": "offers", "model_version": "v1", pv.TRAINING_MEMBERS_KEY: pv.training_members_entry([gone])}),
        ("b", {"name": "offers", "model_version": "v2",
               pv.TRAINING_MEMBERS_KEY: pv.training_members_entry([pv.pseudonym("m-other", SALT)])}),
        ("c", {"name": "churn", "model_version": "cdnow"}),
    ]
    lineage = pv.lineage_of(cards, gone)
    assert lineage.trained_on == ["offers:v1"]
    assert lineage.not_trained_on == ["offers:v2"]
    assert lineage.unknown == ["churn:cdnow"]


def test_an_erasure_reason_must_not_identify_the_member():
    ids = pv.MemberIdentifiers("m-77", "p-x", ("zoe@example.com", "Zoe"))
    assert pv.check_reason("  support ticket 12 ", ids) == "support ticket 12"
    for bad in ("asked by zoe@example.com", "member m-77 called", "ZOE wrote in", ""):
        with pytest.raises(pv.PrivacyRequestError):
            pv.check_reason(bad, ids)
    with pytest.raises(pv.PrivacyRequestError, match="under"):
        pv.check_reason("x" * 300, ids)


def test_the_erasure_list_excludes_by_pseudonym():
    erased = pv.ErasureList(SALT, frozenset({pv.pseudonym("m-1", SALT)}))
    assert erased.excludes("m-1") and not erased.excludes("m-2") and len(erased) == 1


def test_a_receipt_holds_no_identifier():
    ids = pv.MemberIdentifiers("m-5", pv.pseudonym("m-5", SALT), ("eve@example.com",))
    now = datetime(2026, 3, 2, tzinfo=UTC)
    receipt = pv.ErasureReceipt(pseudonym=ids.pseudonym, requested_at=now, completed_at=now,
                                reason=pv.check_reason("ticket 9", ids), removed={"profile": 1})
    text = receipt.model_dump_json()
    assert "m-5" not in text.replace(ids.pseudonym, "") and "eve@" not in text


def test_identifiers_are_found_in_json_even_when_escaped():
    ids = pv.MemberIdentifiers("m-1", "p-1", ("zoë@exämple.com",))
    line = json.dumps({"contact": "zoë@exämple.com"})  # ensure_ascii: written as \\u00eb
    assert "zoë" not in line
    kept, removed = pv.without_member_lines(line.encode(), ids)
    assert removed == 1 and kept == b""


def test_a_whole_json_document_is_filtered_by_element_not_by_line():
    from functions.dal.privacy import _without_member

    ids = pv.MemberIdentifiers("m-1", "p-1")
    rows = [{"member_id": "m-1", "x": 1}, {"member_id": "m-2", "x": 2}]
    pretty = json.dumps(rows, indent=2).encode()
    kept, removed = _without_member(pretty, ids)
    assert removed == 1 and json.loads(kept) == [{"member_id": "m-2", "x": 2}]
    assert _without_member(json.dumps({"member_id": "m-1"}, indent=2).encode(), ids) == (b"", 1)
    other = json.dumps({"member_id": "m-2"}).encode()
    assert _without_member(other, ids) == (other, 0)
