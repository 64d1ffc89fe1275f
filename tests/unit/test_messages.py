"""Slack messages: what they say, their Block Kit limits, and that they carry only references and codes."""

from __future__ import annotations

import json

import pytest

from tasks.messages import MAX_BLOCKS, MAX_SECTION_CHARS, grouped, keys_in_metadata, render
from tests.slack_server import BLOCKS_TEXT_LIMIT, block_text_chars


def missed(n: int, **extra: object) -> dict[str, object]:
    return {
        "case_ref": f"CH-2026-{n:06d}",
        "kind": "victim_followup",
        "queue": "unit",
        "tier": "high",
        "level": 1,
        "due_local": "Mon 31 Aug 2026 17:00",
        "working_days_late": 2,
        "staff_code": "CH-UNI-01",
        "slack_user_id": "U012AB3CD",
        **extra,
    }


def announced(ref: str) -> dict[str, object]:
    return {"case_ref": ref, "force": "cheshire", "tier": "high", "queue": "unit", "reasons": ["sdash_high"]}


def test_a_missed_contact_says_what_when_how_late_and_what_to_do() -> None:
    message = render("missed_contact", missed(7), "missed:7:L1")
    text = json.dumps(message.blocks) + message.text
    for expected in (
        "CH-2026-000007",
        "victim follow-up",
        "31 Aug",
        "2 working days late",
        "level 1",
        "iasu case show CH-2026-000007",
        "<@U012AB3CD>",
        "iasu contact record",
    ):
        assert expected in text
    assert message.metadata() == {"event_type": "iasu_alert", "event_payload": {"dedupe_key": "missed:7:L1"}}


@pytest.mark.parametrize("count", [6, 49, 50, 51, 500, 2000])
def test_grouped_messages_respect_block_kit_limits_and_deliver_every_alert(count: int) -> None:
    items = [("missed_contact", missed(i), f"missed:{i}:L1") for i in range(count)]
    messages = grouped(items)
    assert sorted(k for m in messages for k in m.dedupe_keys) == sorted(k for _, _, k in items)
    for m in messages:
        assert len(m.blocks) <= MAX_BLOCKS
        assert all(len(b["text"]["text"]) <= MAX_SECTION_CHARS for b in m.blocks if b["type"] == "section")
        assert block_text_chars(m.blocks) <= BLOCKS_TEXT_LIMIT  # what Slack takes in one message, all blocks together
        assert m.text  # a plain-text fallback always goes with blocks
        for key in m.dedupe_keys:
            ref = f"CH-2026-{int(key.split(':')[1]):06d}"
            assert ref in json.dumps(m.blocks)


def test_a_payload_value_is_the_only_thing_a_message_can_show() -> None:
    # Payloads are built from codes and references; any extra key is simply not rendered.
    message = render("missed_contact", missed(1, victim_name="ZZMARKERNAME"), "k")
    assert "ZZMARKERNAME" not in json.dumps(message.blocks) + message.text


def test_a_nights_new_high_risk_cases_are_listed_as_runs_of_references() -> None:
    # A night numbers its most urgent cases first, so its high-risk announcements are runs of references.
    numbers = [*range(1, 2501), 2600, *range(2700, 2710)]
    items = [
        ("new_high_risk", announced(f"{p}-2026-{n:06d}"), f"new_high_risk:{p}-2026-{n:06d}")
        for p in ("CH", "HA")
        for n in numbers
    ]
    [message] = grouped(items)  # 5,022 alerts, six lines
    assert sorted(message.dedupe_keys) == sorted(k for _, _, k in items)
    listed = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")
    assert "• new high-risk: *CH-2026-000001* to *CH-2026-002500* (2500 cases)" in listed
    assert "• new high-risk: *HA-2026-002700* to *HA-2026-002709* (10 cases)" in listed
    assert "• new high-risk: *CH-2026-002600*\n" in listed
    # The metadata names every key, as runs: small enough to carry, and read back whole.
    payload = message.metadata()["event_payload"]
    assert len(json.dumps(payload)) < 500
    assert sorted(keys_in_metadata(payload)) == sorted(message.dedupe_keys)


def test_metadata_lists_keys_that_are_not_numbered_and_reads_them_back() -> None:
    items = [("missed_contact", missed(i), f"missed:{i}:L1") for i in range(8)]
    items.append(("new_high_risk", announced("CH-2026-000009"), "new_high_risk:CH-2026-000009"))
    [message] = grouped(items)
    payload = message.metadata()["event_payload"]
    assert payload["dedupe_keys"][:8] == [f"missed:{i}:L1" for i in range(8)]
    assert sorted(keys_in_metadata(payload)) == sorted(set(message.dedupe_keys))


def test_a_grouped_message_of_two_alerts_names_both_in_its_metadata() -> None:
    """The smallest group: the second alert's key is in the metadata too, or a resend would post it again."""
    items = [("missed_contact", missed(i), f"missed:{i}:L1") for i in (1, 2)]
    [message] = grouped(items)
    assert message.dedupe_keys == ["missed:1:L1", "missed:2:L1"]
    assert keys_in_metadata(message.metadata()["event_payload"]) == ["missed:1:L1", "missed:2:L1"]


def test_metadata_runs_outside_six_digit_case_numbers_are_not_read() -> None:
    payload = {
        "dedupe_key": "new_high_risk:CH-2026-000001",
        "dedupe_runs": [
            {"prefix": "new_high_risk:CH-2026-", "first": 1, "last": 3},
            {"prefix": "x-", "first": 0, "last": 10**9},  # not a run this code writes: ignored, not expanded
        ],
    }
    assert keys_in_metadata(payload) == [f"new_high_risk:CH-2026-00000{n}" for n in (1, 2, 3)]


def test_a_digest_or_ops_event_grouped_with_other_alerts_still_says_what_it_is() -> None:
    digest = {"date": "2026-11-02", "overdue_by_level": {"1": 9}, "overdue_by_queue": {"unit": 4}, "due_today": 3}
    unassigned = {"event": "cases_unassigned", "date": "2026-11-02", "cases": 40, "by_queue": {"unit/cheshire": 40}}
    items = [("missed_contact", missed(i), f"missed:{i}:L1") for i in range(6)]
    failed = {"event": "alert_failed", "alert_id": 77, "error": "channel_not_found", "case_ref": None}
    items += [("digest", digest, "digest:C0UNIT:2026-11-02"), ("ops", {**unassigned, "case_refs": []}, "ops:u")]
    items += [("ops", failed, "ops:alert_failed:77")]  # an ops alert's failure: no case to name
    [message] = grouped(items)
    listed = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")
    assert "alert_id: 77, error: channel_not_found" in listed and "*None*" not in listed
    assert "Daily digest 2026-11-02: overdue by level 1: 9; by queue unit: 4; due today 3" in listed
    assert "40 open case(s) have no eligible worker" in listed
    assert "*-*" not in listed and " -," not in message.text  # no stand-in for a reference that is not there


def test_a_grouped_message_s_notification_text_says_what_kinds_of_alert_it_holds() -> None:
    digest = {"date": "2026-11-02", "overdue_by_level": {"1": 9}, "overdue_by_queue": {"unit": 4}, "due_today": 3}
    items = [("new_high_risk", announced(f"CH-2026-{n:06d}"), f"new_high_risk:CH-2026-{n:06d}") for n in range(1, 16)]
    items += [("missed_contact", missed(n), f"missed:{n}:L2") for n in (40, 41)]
    items += [("digest", digest, "digest:C0UNIT:2026-11-02")]
    [message] = grouped(items)
    assert message.text.startswith("18 alerts (15 new high-risk, 2 missed contact, 1 digest): CH-2026-000040, ")
    header = message.blocks[0]["text"]["text"]
    assert header == ":warning: 18 alerts for this channel: 15 new high-risk, 2 missed contact, 1 digest"
    # A kind this list does not name yet is still counted, by its code, so the parts add up to the whole.
    [other] = grouped([*items[15:], ("future_kind", {"case_ref": "CH-2026-000099"}, "future:99")])
    assert other.text.startswith("4 alerts (2 missed contact, 1 digest, 1 future_kind): ")


def test_an_ops_alert_shows_outside_text_as_text_never_as_a_mention_or_a_link() -> None:
    payload = {"event": "file_held", "file": "x_<!channel>_<https://example.org|see> & co.csv", "reason": "a < b"}
    message = render("ops", payload, "ops:file_held:x")
    shown = json.dumps([message.text, message.blocks])
    assert "<!channel>" not in shown and "<https://" not in shown
    assert "&lt;!channel&gt;" in message.text and "&amp; co.csv" in message.text and "a &lt; b" in message.text


@pytest.mark.parametrize(("alerts", "messages"), [(5, 5), (6, 1)])
def test_a_channel_gets_one_message_an_alert_up_to_the_threshold_and_grouped_ones_above_it(
    alerts: int, messages: int
) -> None:
    from iasu.policy import load_policy
    from tasks.notify import _messages

    policy = load_policy(None)
    assert policy.alerts.group_threshold == 5  # the shipped policy's threshold, which the table is written for
    keys = [f"missed:{n}:L1" for n in range(alerts)]
    queued = [{"kind": "missed_contact", "payload": missed(n), "dedupe_key": key} for n, key in enumerate(keys)]
    out = _messages(queued, policy)
    assert len(out) == messages
    assert sorted(str(a["dedupe_key"]) for _message, members in out for a in members) == keys  # each alert once


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"level": 1}, "level 1 (team), worker CH-UNI-01"),
        ({"level": 2}, "level 2 (supervisors), worker CH-UNI-01"),
        ({"level": 3, "staff_code": None, "slack_user_id": None}, "level 3 (unit lead), worker unassigned"),
    ],
)
def test_a_missed_contact_names_who_is_told_at_its_level_and_its_worker(extra: dict[str, object], says: str) -> None:
    message = render("missed_contact", missed(7, **extra), "missed:7")
    assert says in message.text and says in json.dumps(message.blocks)


def test_a_new_high_risk_case_says_why_in_its_text_and_its_blocks() -> None:
    message = render("new_high_risk", announced("CH-2026-000042") | {"reasons": ["sdash_high", "marker_threats"]}, "k")
    assert message.text == "New high-risk case CH-2026-000042: tier high; reasons sdash_high, marker_threats"
    assert "Reasons: sdash_high, marker_threats" in json.dumps(message.blocks)


@pytest.mark.parametrize(
    ("cases", "ending"), [(2, "CH-2026-000001, CH-2026-000002"), (5, "CH-2026-000001, CH-2026-000002 and 3 more")]
)
def test_cases_without_a_worker_are_listed_and_only_the_rest_counted(cases: int, ending: str) -> None:
    payload = {
        "event": "cases_unassigned",
        "date": "2026-11-17",
        "cases": cases,
        "case_refs": ["CH-2026-000001", "CH-2026-000002"],
        "by_queue": {"unit/cheshire": cases},
    }
    assert render("ops", payload, "k").text.endswith(f": {ending}")
