"""Missed deadlines to Slack through the outbox: once per level, nothing lost, never twice, nothing personal.

The real slack_sdk WebClient talks to tests/slack_server.py over loopback.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from iasu import wiring
from iasu.policy import get_policy
from models import Alert
from tasks import notify
from tasks.messages import keys_in_metadata
from tasks.monitor import monitor
from tasks.notify import SlackNotifier, dispatch, drain
from tasks.outbox import outbox_row, queue_alert
from tasks.queries import Retried
from tasks.schedule import schedule
from tests.conftest import KeptStates
from tests.slack_server import FakeSlack, _Reply
from tests.support import leaks, night_without_prefect, personal_needles, policy_with, write_days

DAY = date(2026, 8, 20)  # a Thursday; first contacts fall due from Friday 21st
ALERTS = Alert.__table__  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def quick_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Posts to one channel 50 ms apart, not a second: these tests are about what arrives, not when.

    The pacing itself is tested in test_slack_pacing.py against the fake's rate limit; here a dispatch of five
    messages to one channel spent four seconds asleep.
    """
    monkeypatch.setattr(notify, "CHANNEL_INTERVAL_S", 0.05)


@pytest.fixture
def overdue(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept_states: KeptStates
) -> dict[str, Any]:
    """One night's cases with their first contacts scheduled and never done."""
    monkeypatch.setenv("IASU_POLICY_FILE", str(policy_with(tmp_path, a="timeout_seconds: 10=>timeout_seconds: 1")))
    wiring.reset()
    write_days(tmp_path / "inbox", DAY, per_day=30, dirty=0.0, seed=31)

    def take_in_and_schedule() -> None:
        night_without_prefect(tmp_path / "inbox", DAY, tmp_path / "docs")
        with wiring.engine().begin() as conn:
            schedule(conn, policy=get_policy(), run_date=DAY, actor="test", timezone="Europe/London")

    kept_states.restore("alerts-overdue", take_in_and_schedule)
    return {"url": configured, "inbox": tmp_path / "inbox"}


def run_monitor(day: date) -> dict[str, int]:
    with wiring.engine().begin() as conn:
        return monitor(conn, policy=get_policy(), run_date=day, timezone="Europe/London").overdue


def outbox() -> list[dict[str, Any]]:
    with wiring.engine().connect() as conn:
        return [dict(r) for r in conn.execute(select(ALERTS).order_by(ALERTS.c.id)).mappings()]


def keys_at(fake: FakeSlack) -> Counter[str]:
    """Every dedupe key the fake Slack received, counted (grouped messages carry several)."""
    seen: Counter[str] = Counter()
    for message in fake.messages:
        seen.update(keys_in_metadata((message.get("metadata") or {}).get("event_payload") or {}))
    return seen


def slack(fake: FakeSlack) -> SlackNotifier:
    return SlackNotifier("xoxb-test", fake.base_url, get_policy().alerts.timeout_seconds)


def test_each_missed_contact_gives_one_alert_per_level_across_reruns(overdue: dict[str, Any]) -> None:
    assert run_monitor(DAY) == {"1": 0, "2": 0, "3": 0}  # nothing is due before the end of the night it opened
    first = run_monitor(DAY + timedelta(days=5))  # Tuesday: high-tier first contacts are late
    assert first["1"] + first["2"] > 0
    run_monitor(DAY + timedelta(days=5))  # a rerun of the same night
    run_monitor(DAY + timedelta(days=12))  # still missed a week later: escalated
    run_monitor(DAY + timedelta(days=20))
    missed = [a for a in outbox() if a["kind"] == "missed_contact"]
    per_level = Counter((a["contact_id"], a["level"]) for a in missed)
    assert per_level and max(per_level.values()) == 1
    assert {a["level"] for a in missed} == {1, 2, 3}
    channels = {a["level"]: a["channel"] for a in missed}
    assert channels[2].endswith("SUPER") and channels[3].endswith("LEAD")


def test_queues_sharing_a_channel_each_get_their_digest(
    overdue: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.monitor import MonitorResult, queue_digests

    shared = policy_with(tmp_path, a="probation: {channel: C0IASUPROBATION}=>probation: {channel: C0IASUMH}")
    monkeypatch.setenv("IASU_POLICY_FILE", str(shared))
    wiring.reset()
    with wiring.engine().begin() as conn:
        queued = queue_digests(conn, policy=get_policy(), run_date=DAY, result=MonitorResult(), due_today={})
        again = queue_digests(conn, policy=get_policy(), run_date=DAY, result=MonitorResult(), due_today={})
    digests = [a for a in outbox() if a["kind"] == "digest"]
    assert queued == len(digests) == len(get_policy().queues) and again == 0
    assert sorted(a["payload"]["queue"] for a in digests if a["channel"] == "C0IASUMH") == [
        "mental_health",
        "probation",
    ]


@pytest.mark.parametrize("days_on", [1, 5])  # first contacts due that day; then missed, some escalated
def test_each_queue_digest_counts_its_own_queue(overdue: dict[str, Any], days_on: int) -> None:
    from zoneinfo import ZoneInfo

    from models import Case, Contact
    from tasks.monitor import monitor, queue_digests
    from tasks.schedule import due_today_by_queue

    day = DAY + timedelta(days=days_on)
    with wiring.engine().begin() as conn:
        result = monitor(conn, policy=get_policy(), run_date=day, timezone="Europe/London")
        due = due_today_by_queue(conn, run_date=day, timezone="Europe/London")
        queue_digests(conn, policy=get_policy(), run_date=day, result=result, due_today=due)
        contacts = conn.execute(
            select(Case.__table__.c.queue, Contact.__table__.c.due_at)  # type: ignore[attr-defined]
            .join(Case.__table__, Case.__table__.c.id == Contact.__table__.c.case_id)  # type: ignore[attr-defined]
            .where(Contact.__table__.c.status == "pending")  # type: ignore[attr-defined]
        ).all()
    london = ZoneInfo("Europe/London")
    due_here = Counter(q for q, at in contacts if at.replace(tzinfo=at.tzinfo or UTC).astimezone(london).date() == day)
    levels: dict[str, Counter[str]] = {}
    for a in outbox():
        if a["kind"] == "missed_contact":
            levels.setdefault(a["payload"]["queue"], Counter())[str(a["level"])] += 1
    digests = {a["payload"]["queue"]: a["payload"] for a in outbox() if a["kind"] == "digest"}
    assert set(digests) == {q.value for q in get_policy().queues}
    for queue, payload in digests.items():
        assert payload["due_today"] == due_here.get(queue, 0), queue
        assert {k: v for k, v in payload["overdue_by_level"].items() if v} == dict(levels.get(queue, {})), queue
        assert payload["overdue_by_queue"] == {queue: sum(levels.get(queue, Counter()).values())}
    shown = [(p["due_today"], sum(p["overdue_by_level"].values())) for p in digests.values()]
    assert len(set(shown)) > 1  # queues differ: a digest of the whole unit's counts in each would fail above


def test_a_late_completion_stops_the_escalation(overdue: dict[str, Any]) -> None:
    from tasks.outcomes import OutcomeReport, record_outcomes

    run_monitor(DAY + timedelta(days=5))
    level1 = [a for a in outbox() if a["kind"] == "missed_contact"]
    with wiring.engine().begin() as conn:
        refs = {(a["payload"]["case_ref"], a["payload"]["kind"]) for a in level1}
        from datetime import UTC, datetime

        reports = [
            OutcomeReport(
                case_ref=ref, kind=kind, happened_at=datetime(2026, 8, 27, 10, tzinfo=UTC), outcome="completed"
            )
            for ref, kind in sorted(refs)
        ]
        record_outcomes(conn, reports, origin="test", actor="test", policy=get_policy(), timezone="Europe/London")
    run_monitor(DAY + timedelta(days=20))
    later = [
        a for a in outbox() if a["kind"] == "missed_contact" and a["payload"]["case_ref"] in refs and a["level"] > 1
    ]
    assert later == []


def test_a_closed_cases_cancelled_contacts_are_never_reported_missed(overdue: dict[str, Any]) -> None:
    """Closing a case cancels its contacts: nobody is chased for a contact that no longer has to happen."""
    from models import Case, Contact
    from tasks.cases import close_case

    contacts, cases = Contact.__table__, Case.__table__  # type: ignore[attr-defined]
    policy = get_policy()
    with wiring.engine().begin() as conn:
        first_due = (
            select(cases.c.case_ref)
            .join(contacts, contacts.c.case_id == cases.c.id)
            .where(contacts.c.status == "pending")
            .order_by(contacts.c.due_at, contacts.c.id)
            .limit(1)
        )
        ref = conn.execute(first_due).scalar_one()
        cancelled = close_case(
            conn, ref, outcome=policy.outcomes[0], by="DI Example", reason=None, policy=policy, cipher=wiring.cipher()
        )
    assert cancelled
    counted = run_monitor(DAY + timedelta(days=12))
    missed = [a for a in outbox() if a["kind"] == "missed_contact"]
    assert missed and sum(counted.values()) == len(missed)
    assert ref not in {a["payload"]["case_ref"] for a in missed}


def test_a_missed_contact_assigned_to_a_worker_no_longer_active_names_and_mentions_nobody(
    overdue: dict[str, Any],
) -> None:
    """Someone who has left is neither named as the contact's worker nor mentioned in Slack for it."""
    from models import Case, Contact, Staff
    from rules.codes import Force, Queue
    from tasks.staff import add_staff

    contacts, cases, staff = Contact.__table__, Case.__table__, Staff.__table__  # type: ignore[attr-defined]
    with wiring.engine().begin() as conn:
        first = conn.execute(
            select(contacts.c.id, cases.c.queue, cases.c.force)
            .join(cases, cases.c.id == contacts.c.case_id)
            .where(contacts.c.status == "pending")
            .order_by(contacts.c.due_at, contacts.c.id)
            .limit(1)
        ).one()
        for code, active in (("T-LEFT", False), ("T-HERE", True)):
            add_staff(
                conn,
                staff_code=code,
                queue=Queue(first.queue),
                force=Force(first.force),
                slack_user_id=f"U0{code[2:]}",
                cipher=wiring.cipher(),
                actor="test",
            )
            conn.execute(staff.update().where(staff.c.staff_code == code).values(active=active))
        left, here = (
            conn.execute(select(staff.c.id).where(staff.c.staff_code == code)).scalar_one()
            for code in ("T-LEFT", "T-HERE")
        )
        second = conn.execute(
            select(contacts.c.id)
            .where(contacts.c.status == "pending", contacts.c.id != first.id)
            .order_by(contacts.c.due_at, contacts.c.id)
            .limit(1)
        ).scalar_one()
        conn.execute(contacts.update().where(contacts.c.id == first.id).values(assigned_staff_id=left))
        conn.execute(contacts.update().where(contacts.c.id == second).values(assigned_staff_id=here))
    assert run_monitor(DAY + timedelta(days=3))["1"] > 0  # Sunday: Friday's deadlines are missed, level 1
    told = {a["contact_id"]: a["payload"] for a in outbox() if a["kind"] == "missed_contact"}
    assert (told[first.id]["staff_code"], told[first.id]["slack_user_id"]) == (None, None)
    assert (told[second]["staff_code"], told[second]["slack_user_id"]) == ("T-HERE", "U0HERE")


def test_a_moved_deadline_missed_again_is_told_again_from_the_team_up(overdue: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    from tasks.outcomes import OutcomeReport, record_outcomes

    run_monitor(DAY + timedelta(days=5))  # Tue 25 Aug: the first deadlines are missed
    first = [a for a in outbox() if a["kind"] == "missed_contact"]
    assert first
    refs = sorted({(a["payload"]["case_ref"], a["payload"]["kind"]) for a in first})
    # Wed 26 Aug: each was tried and nobody answered; the same contact row is due again a working day later.
    attempted = datetime(2026, 8, 26, 10, tzinfo=UTC)
    reports = [OutcomeReport(ref, kind, attempted, "attempted_no_answer") for ref, kind in refs]
    with wiring.engine().begin() as conn:
        record_outcomes(conn, reports, origin="test", actor="test", policy=get_policy(), timezone="Europe/London")
    retried = {a["contact_id"] for a in first}
    friday = DAY + timedelta(days=8)
    assert run_monitor(friday)["1"] >= len(retried)  # the retry's deadline passed on Thursday: missed again
    run_monitor(friday)  # a rerun of the same night tells nobody twice
    run_monitor(DAY + timedelta(days=20))  # and it stays missed: escalated again
    again = [
        a
        for a in outbox()
        if a["kind"] == "missed_contact" and a["contact_id"] in retried and a["id"] > max(b["id"] for b in first)
    ]
    per_level = Counter((a["contact_id"], a["level"]) for a in again)
    assert {c for c, level in per_level if level == 1} == retried  # each told its team of the new deadline
    assert max(per_level.values()) == 1
    assert max(level for _, level in per_level) > 1
    assert all(":2026082" in a["dedupe_key"] for a in again)  # the key names the moved deadline (UTC)


def test_slack_down_for_a_night_loses_nothing_and_the_next_dispatch_sends_each_once(overdue: dict[str, Any]) -> None:
    run_monitor(DAY + timedelta(days=12))
    queued = len(outbox())
    with FakeSlack() as fake:
        fake.mode = "down"
        down = dispatch(wiring.engine(), slack(fake), get_policy())
        assert down.stopped_for_outage and down.sent == 0 and down.pending == queued
        assert all(a["status"] == "pending" and a["attempts"] == 0 for a in outbox())
        fake.mode = "ok"
        back = dispatch(wiring.engine(), slack(fake), get_policy())
        again = dispatch(wiring.engine(), slack(fake), get_policy())
        assert back.pending == 0 and again.sent == 0
        seen = keys_at(fake)
    assert set(seen) == {a["dedupe_key"] for a in outbox()} and set(seen.values()) == {1}
    assert all(a["status"] == "sent" and a["slack_ts"] for a in outbox())


@pytest.mark.parametrize("chatter", [0, 450], ids=["quiet channel", "busy channel"])
def test_a_timeout_after_delivery_does_not_produce_a_second_message(overdue: dict[str, Any], chatter: int) -> None:
    from slack_sdk import WebClient

    run_monitor(DAY + timedelta(days=5))
    with FakeSlack(hang_seconds=2) as fake:
        fake.fail_next(1, "hang")  # the first post arrives, then the client times out
        first = dispatch(wiring.engine(), slack(fake), get_policy())
        assert first.pending >= 1
        channel = next(m["channel"] for m in fake.messages)
        team = WebClient(token="xoxb-team", base_url=fake.base_url)
        for n in range(chatter):  # the team's own messages since, more than two pages of history: still found
            team.chat_postMessage(channel=channel, text=f"chat {n}")
        second = dispatch(wiring.engine(), slack(fake), get_policy())
        assert second.pending == 0
        seen = keys_at(fake)
    assert set(seen.values()) == {1}
    assert {a["status"] for a in outbox()} == {"sent"}


def test_an_alert_found_delivered_in_the_channels_history_counts_as_sent(overdue: dict[str, Any]) -> None:
    """An alert found in Slack after a timeout reached staff: the night's counts say sent, not nothing."""
    run_monitor(DAY + timedelta(days=5))
    with FakeSlack(hang_seconds=2) as fake:
        fake.fail_next(1, "hang")  # the first post arrives, then the client times out
        first = dispatch(wiring.engine(), slack(fake), get_policy())
        waiting = [a for a in outbox() if a["tried_at"] and a["status"] == "pending"]
        assert waiting and first.pending == len(waiting)
        second = dispatch(wiring.engine(), slack(fake), get_policy())
    assert (second.sent, second.messages, second.pending) == (len(waiting), 0, 0)
    assert first.sent + second.sent == len(outbox())


def test_a_dispatch_with_nothing_to_send_is_not_taken_for_slack_unreachable(configured: str) -> None:
    """An empty outbox is a quiet dispatch: the five-minute flow must not fail for Slack being down."""
    with FakeSlack() as fake:
        result = dispatch(wiring.engine(), slack(fake), get_policy())
        assert fake.requests == []
    assert (result.stopped_for_outage, result.stopped(), result.pending) == (False, None, 0)


def test_a_channels_history_is_searched_from_its_earliest_tried_alert(configured: str) -> None:
    """Alerts tried minutes apart: the one delivered before the later try is found, not posted a second time."""
    held = {"event": "file_held", "batch_id": 7, "file": "police_rms_2026-11-02.csv", "rows": 3, "reason": "r"}
    channel = "C0TRIEDTWICE"
    with wiring.engine().begin() as conn:
        queue_alert(conn, [outbox_row("ops", "ops:held:1", channel, held)])
    first_try = datetime.now(UTC)
    with FakeSlack(hang_seconds=2) as fake:
        notifier = SlackNotifier("xoxb-test", fake.base_url, 1)
        fake.fail_next(1, "hang")  # the post arrives, then the client times out: pending, marked as tried
        dispatch(wiring.engine(), notifier, get_policy(), now=lambda: first_try)
        later = first_try + timedelta(minutes=10)
        with wiring.engine().begin() as conn:  # another alert of the channel, tried ten minutes on, its post lost
            queue_alert(conn, [outbox_row("ops", "ops:held:2", channel, held)])
            conn.execute(ALERTS.update().where(ALERTS.c.dedupe_key == "ops:held:2").values(tried_at=later))
        result = dispatch(wiring.engine(), notifier, get_policy(), now=lambda: later + timedelta(minutes=1))
        seen = keys_at(fake)
    assert seen == Counter({"ops:held:1": 1, "ops:held:2": 1})
    assert result.sent == 2 and {a["status"] for a in outbox()} == {"sent"}


def test_a_missed_contact_alert_that_reached_slack_before_its_contact_was_done_stays_sent(
    overdue: dict[str, Any],
) -> None:
    """Staff were told: the record says the alert was sent, though the contact was done before it was confirmed."""
    from tasks.outcomes import OutcomeReport, record_outcomes

    run_monitor(DAY + timedelta(days=5))
    with FakeSlack(hang_seconds=2) as fake:
        fake.fail_next(1, "hang")  # the first post arrives, then the client times out
        dispatch(wiring.engine(), slack(fake), get_policy())
        tried = [a for a in outbox() if a["tried_at"] and a["status"] == "pending"]
        assert tried and {a["kind"] for a in tried} == {"missed_contact"}
        refs = sorted({(a["payload"]["case_ref"], a["payload"]["kind"]) for a in tried})
        done = datetime(2026, 8, 27, 10, tzinfo=UTC)
        with wiring.engine().begin() as conn:
            record_outcomes(
                conn,
                [OutcomeReport(case_ref=ref, kind=kind, happened_at=done, outcome="completed") for ref, kind in refs],
                origin="test",
                actor="test",
                policy=get_policy(),
                timezone="Europe/London",
            )
        result = dispatch(wiring.engine(), slack(fake), get_policy())
        seen = keys_at(fake)
    status = {a["id"]: a["status"] for a in outbox()}
    assert result.withdrawn == 0 and {status[a["id"]] for a in tried} == {"sent"}
    assert {seen[a["dedupe_key"]] for a in tried} == {1}


@pytest.mark.parametrize(
    ("history", "failures"),
    # Nine 429s: one more than the client waits out. Slack answers its own passing trouble with HTTP 200 too.
    [("server_error", 1), ("rate_limited", 9), ("unavailable", 1)],
)
def test_a_history_read_that_fails_for_now_does_not_send_a_delivered_alert_again(
    overdue: dict[str, Any], history: Any, failures: int
) -> None:
    run_monitor(DAY + timedelta(days=5))
    with FakeSlack(hang_seconds=2, retry_after=0) as fake:
        fake.fail_next(1, "hang")  # the first post arrives, then the client times out
        first = dispatch(wiring.engine(), slack(fake), get_policy())
        assert first.pending >= 1
        waiting = {a["dedupe_key"] for a in outbox() if a["tried_at"] and a["status"] == "pending"}
        fake.fail_next(failures, history)  # the read of the channel's history before any resend
        second = dispatch(wiring.engine(), slack(fake), get_policy())
        assert {a["dedupe_key"] for a in outbox() if a["status"] == "pending"} == waiting
        assert second.pending == len(waiting)
        third = dispatch(wiring.engine(), slack(fake), get_policy())  # the history answers: found, not resent
        assert third.pending == 0
        seen = keys_at(fake)
    assert set(seen.values()) == {1}
    assert {a["status"] for a in outbox()} == {"sent"}
    assert {a["attempts"] for a in outbox() if a["dedupe_key"] in waiting} == {0}


def test_a_send_slack_refuses_for_now_with_http_200_uses_no_attempt(overdue: dict[str, Any]) -> None:
    run_monitor(DAY + timedelta(days=5))
    with FakeSlack(retry_after=0) as fake:
        fake.fail_next(1, "unavailable")  # the first post: ok false, service_unavailable
        dispatch(wiring.engine(), slack(fake), get_policy())
        dispatch(wiring.engine(), slack(fake), get_policy())
        seen = keys_at(fake)
    assert {a["status"] for a in outbox()} == {"sent"} and set(seen.values()) == {1}
    assert {a["attempts"] for a in outbox()} == {1}, "the refusal for now used no attempt"


def test_a_history_slack_refuses_to_show_sends_the_tried_alerts_again(overdue: dict[str, Any]) -> None:
    class NoHistoryScope(FakeSlack):
        def _decide(self, mode: Any, method: str, params: dict[str, Any], token: str | None) -> Any:
            if method == "conversations.history":
                return _Reply(200, {"ok": False, "error": "missing_scope"})
            return super()._decide(mode, method, params, token)

    run_monitor(DAY + timedelta(days=5))
    with NoHistoryScope(hang_seconds=2) as fake:
        fake.fail_next(1, "hang")
        assert dispatch(wiring.engine(), slack(fake), get_policy()).pending >= 1
        # Never readable: waiting would hold the alerts for ever, so they go again, keys in their metadata.
        assert dispatch(wiring.engine(), slack(fake), get_policy()).pending == 0
    assert {a["status"] for a in outbox()} == {"sent"}


def test_a_post_slack_stored_before_the_connection_dropped_is_not_posted_again(overdue: dict[str, Any]) -> None:
    from tests.slack_server import DROPPED, _Reply

    class DropsFirstAnswer(FakeSlack):
        dropped = False

        def _decide(self, mode: Any, method: str, params: dict[str, Any], token: str | None) -> _Reply:
            reply = super()._decide(mode, method, params, token)
            if method == "chat.postMessage" and reply.status == 200 and not self.dropped:
                self.dropped = True  # stored, then the connection is reset before the answer
                return _Reply(DROPPED)
            return reply

    run_monitor(DAY + timedelta(days=5))
    with DropsFirstAnswer() as fake:
        first = dispatch(wiring.engine(), slack(fake), get_policy())
        assert first.pending >= 1  # the dropped one waits, marked as tried
        dispatch(wiring.engine(), slack(fake), get_policy())  # finds it in the channel's history
        seen = keys_at(fake)
        posts = [status for method, status in fake.requests if method == "chat.postMessage"]
    assert posts.count(DROPPED) == 1 and set(seen.values()) == {1}
    assert set(seen) == {a["dedupe_key"] for a in outbox()} and {a["status"] for a in outbox()} == {"sent"}


def test_another_apps_message_naming_a_tried_alert_does_not_pass_for_its_delivery(overdue: dict[str, Any]) -> None:
    """Only this app's own messages show an alert delivered: another app's metadata in the channel may name anything."""
    from slack_sdk import WebClient

    from tests.slack_server import DROPPED

    class LosesFirstPost(FakeSlack):
        lost = False

        def _decide(self, mode: Any, method: str, params: dict[str, Any], token: str | None) -> _Reply:
            if method == "chat.postMessage" and not self.lost:
                self.lost = True  # the connection reset before Slack stored the post
                return _Reply(DROPPED)
            return super()._decide(mode, method, params, token)

    run_monitor(DAY + timedelta(days=5))
    with LosesFirstPost() as fake:
        dispatch(wiring.engine(), slack(fake), get_policy())
        tried = [a for a in outbox() if a["tried_at"] and a["status"] == "pending"]
        assert tried
        other_app = WebClient(token="xoxb-other-app", base_url=fake.base_url)
        for a in tried:
            other_app.chat_postMessage(
                channel=a["channel"],
                text="tracked elsewhere",
                metadata={"event_type": "case_tracker", "event_payload": {"dedupe_key": a["dedupe_key"]}},
            )
        dispatch(wiring.engine(), slack(fake), get_policy())
        ours: Counter[str] = Counter()
        for message in fake.messages:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == "iasu_alert":
                ours.update(keys_in_metadata(metadata.get("event_payload") or {}))
    assert {a["dedupe_key"] for a in tried} <= set(ours) and set(ours.values()) == {1}
    assert {a["status"] for a in outbox()} == {"sent"}


@pytest.mark.parametrize(
    ("error", "never_reached"),
    [
        (urllib.error.URLError(ConnectionRefusedError()), True),
        (urllib.error.URLError(socket.gaierror()), True),
        (ConnectionRefusedError(), True),
        (urllib.error.URLError(ConnectionResetError()), False),
        (ConnectionResetError(), False),
        (http.client.RemoteDisconnected("Remote end closed connection without response"), False),
        (urllib.error.URLError(TimeoutError()), False),
        (None, False),
    ],
)
def test_only_a_post_that_never_reached_slack_is_retried_at_once(error: Any, never_reached: bool) -> None:
    assert notify._never_reached_slack(error) is never_reached


def test_what_slack_rejects_fails_and_tells_ops(overdue: dict[str, Any]) -> None:
    run_monitor(DAY + timedelta(days=5))
    with FakeSlack() as fake:
        fake.mode = "channel_not_found"
        result = dispatch(wiring.engine(), slack(fake), get_policy())
    failed = [a for a in outbox() if a["status"] == "failed"]
    assert result.failed == len(failed) > 0 and all(a["last_error"] == "channel_not_found" for a in failed)
    told = {
        a["payload"]["alert_id"] for a in outbox() if a["kind"] == "ops" and a["payload"]["event"] == "alert_failed"
    }
    assert told == {a["id"] for a in failed if a["kind"] != "ops"}  # ops is told of each, bar its own


def test_an_alert_slack_keeps_refusing_fails_on_its_last_allowed_attempt(overdue: dict[str, Any]) -> None:
    run_monitor(DAY + timedelta(days=5))
    allowed = get_policy().alerts.max_attempts
    with FakeSlack() as fake:
        fake.mode = "invalid_arguments"
        for attempt in range(1, allowed + 1):
            dispatch(wiring.engine(), slack(fake), get_policy())
            status = "pending" if attempt < allowed else "failed"
            tried = {(a["status"], a["attempts"]) for a in outbox() if a["kind"] != "ops"}
            assert tried == {(status, attempt)}, attempt
    told = [a for a in outbox() if a["kind"] == "ops" and a["payload"]["event"] == "alert_failed"]
    assert len(told) == len([a for a in outbox() if a["kind"] != "ops"])  # ops hear of each once, at the end


def test_a_refused_token_stops_the_run_and_a_retry_sends_what_it_failed(overdue: dict[str, Any]) -> None:
    from tasks.queries import retry_failed

    run_monitor(DAY + timedelta(days=5))
    queued = len(outbox())
    with FakeSlack() as fake:
        fake.mode = "invalid_auth"  # the token was revoked or rotated: every post would be refused alike
        refused = drain(wiring.engine(), slack(fake), get_policy())
        assert refused.token_refused and refused.messages == 0
        failed = [a for a in outbox() if a["status"] == "failed"]
        # The message Slack refused failed, as what Slack rejects does; nothing after it was tried.
        assert 0 < len(failed) < queued and {a["last_error"] for a in failed} == {"invalid_auth"}
        assert all(a["attempts"] == 0 for a in outbox() if a["status"] == "pending")
        assert [m for m, _ in fake.requests if m == "chat.postMessage"] == ["chat.postMessage"]
        reports = {a["id"] for a in outbox() if a["kind"] == "ops" and a["payload"]["event"] == "alert_failed"}
        assert len(reports) == len(failed)  # each failure reported, the reports not yet sent
        fake.mode = "ok"  # the token is fixed
        with wiring.engine().begin() as conn:
            assert retry_failed(conn, "invalid_auth", get_policy()) == Retried(
                pending_again=len(failed), reports_withdrawn=len(failed)
            )
        drain(wiring.engine(), slack(fake), get_policy())
        seen = keys_at(fake)
    # Everything reached Slack once and nothing is left, bar the reports of failures that no longer stand:
    # ops is not told that alerts failed which it then sees delivered.
    assert {a["id"] for a in outbox() if a["status"] == "withdrawn"} == reports
    assert set(seen.values()) == {1} and set(seen) == {a["dedupe_key"] for a in outbox() if a["id"] not in reports}
    assert {a["status"] for a in outbox() if a["id"] not in reports} == {"sent"}


def test_an_alert_failed_for_a_wrong_channel_goes_where_the_mended_policy_says_when_put_back(
    overdue: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.queries import retry_failed

    class Unknown(FakeSlack):
        def _decide(self, mode: Any, method: str, params: dict[str, Any], token: str | None) -> Any:
            if method == "chat.postMessage" and str(params.get("channel", "")).endswith("TYPO"):
                return _Reply(200, {"ok": False, "error": "channel_not_found"})
            return super()._decide(mode, method, params, token)

    typo = "supervisor_channels: {cheshire: C0CHSUPER,=>supervisor_channels: {cheshire: C0CHSUPERTYPO,"
    quick = "timeout_seconds: 10=>timeout_seconds: 1"
    monkeypatch.setenv("IASU_POLICY_FILE", str(policy_with(tmp_path, a=quick, b=typo)))
    wiring.reset()
    run_monitor(DAY + timedelta(days=5))  # level 2: the force's supervisors
    with Unknown() as fake:
        dispatch(wiring.engine(), slack(fake), get_policy())
        failed = {a["id"] for a in outbox() if a["last_error"] == "channel_not_found"}
        assert failed and {a["channel"] for a in outbox() if a["id"] in failed} == {"C0CHSUPERTYPO"}
        monkeypatch.setenv("IASU_POLICY_FILE", str(policy_with(tmp_path, a=quick)))  # the operator mends it
        wiring.reset()
        with wiring.engine().begin() as conn:
            retried = retry_failed(conn, "channel_not_found", get_policy())
        assert retried.pending_again == retried.rerouted == len(failed)
        dispatch(wiring.engine(), slack(fake), get_policy())
    again = [a for a in outbox() if a["id"] in failed]
    assert {(a["channel"], a["status"]) for a in again} == {("C0CHSUPER", "sent")}


def test_an_alert_put_back_that_fails_again_is_reported_again(overdue: dict[str, Any]) -> None:
    from tasks.queries import retry_alert

    run_monitor(DAY + timedelta(days=5))
    with FakeSlack() as fake:
        fake.fail_next(1, "channel_not_found")  # the first message only: its channel was archived
        drain(wiring.engine(), slack(fake), get_policy())
        [failed, *_] = [a for a in outbox() if a["status"] == "failed"]
        # Told: the report went out with the next dispatch (the ops channel works).
        drain(wiring.engine(), slack(fake), get_policy())
        with wiring.engine().begin() as conn:  # someone unarchived the channel, then put the alert back
            assert retry_alert(conn, failed["id"], get_policy()) == Retried(pending_again=1, reports_withdrawn=0)
        # Archived again before the next dispatch: its history (read first, the alert having been tried)
        # and the post are both refused.
        fake.fail_next(2, "channel_not_found")
        drain(wiring.engine(), slack(fake), get_policy())
        drain(wiring.engine(), slack(fake), get_policy())
        seen = keys_at(fake)
    reports = [
        a
        for a in outbox()
        if a["kind"] == "ops" and a["payload"]["event"] == "alert_failed" and a["payload"]["alert_id"] == failed["id"]
    ]
    # Two failures, two reports, both delivered: the second is not lost to the first one's dedupe key.
    assert [a["status"] for a in reports] == ["sent", "sent"] and len({a["dedupe_key"] for a in reports}) == 2
    assert [seen.get(a["dedupe_key"]) for a in reports] == [1, 1]
    assert [a["status"] for a in outbox() if a["id"] == failed["id"]] == ["failed"]


def failed_with_their_reports() -> list[dict[str, Any]]:
    """Every channel refused, the ops channel too: the alerts failed, then the reports of their failure."""
    run_monitor(DAY + timedelta(days=5))
    with FakeSlack() as fake:
        fake.mode = "channel_not_found"
        for _ in range(2):  # the reports are queued by the dispatch that fails their alerts, tried by the next
            drain(wiring.engine(), slack(fake), get_policy())
    alerts = outbox()
    assert {a["status"] for a in alerts} == {"failed"}
    return alerts


def test_putting_back_one_alert_withdraws_the_report_of_its_failure_that_itself_failed(
    overdue: dict[str, Any],
) -> None:
    from tasks.queries import retry_alert

    alerts = failed_with_their_reports()
    [alert, *_] = [a for a in alerts if a["kind"] != "ops"]
    [report] = [a for a in alerts if a["kind"] == "ops" and a["payload"].get("alert_id") == alert["id"]]
    with wiring.engine().begin() as conn:
        assert retry_alert(conn, alert["id"], get_policy()) == Retried(pending_again=1, reports_withdrawn=1)
    # Left failed, the report would reach ops with the next retry of its error, of a failure no longer standing.
    status = {a["id"]: a["status"] for a in outbox()}
    assert (status[alert["id"]], status[report["id"]]) == ("pending", "withdrawn")


def test_alert_retry_counts_as_pending_again_the_alerts_only_not_the_failed_reports_it_withdraws(
    overdue: dict[str, Any],
) -> None:
    from typer.testing import CliRunner

    from iasu.cli import app

    alerts = failed_with_their_reports()
    reports = {a["id"] for a in alerts if a["kind"] == "ops" and a["payload"]["event"] == "alert_failed"}
    # The reports failed with the same error as their alerts, so the retry puts them back with them.
    assert {a["last_error"] for a in alerts} == {"channel_not_found"} and 0 < len(reports) < len(alerts)
    out = CliRunner().invoke(app, ["alert", "retry", "--failed-with", "channel_not_found"])
    assert out.exit_code == 0, out.output
    again, withdrawn = len(alerts) - len(reports), len(reports)
    said = f"{again} alert(s) failed with channel_not_found: pending again"
    assert out.stdout.strip() == f"{said}; {withdrawn} unsent report(s) of their failure withdrawn"
    assert {a["id"] for a in outbox() if a["status"] == "withdrawn"} == reports
    assert len([a for a in outbox() if a["status"] == "pending"]) == again


def test_a_failed_ops_alert_is_not_announced_by_another(overdue: dict[str, Any]) -> None:
    run_monitor(DAY + timedelta(days=5))
    with FakeSlack() as fake:
        fake.mode = "channel_not_found"  # every channel, the ops channel too
        for _ in range(4):  # twenty minutes of five-minute dispatches
            drain(wiring.engine(), slack(fake), get_policy())
    alerts = outbox()
    told = [a for a in alerts if a["kind"] == "ops" and a["payload"]["event"] == "alert_failed"]
    # One ops alert for each other alert that failed, itself failed in turn; none about an ops alert.
    assert sorted(a["payload"]["alert_id"] for a in told) == [a["id"] for a in alerts if a["kind"] != "ops"]
    assert {a["status"] for a in alerts} == {"failed"}


def test_no_payload_sent_carries_personal_data(overdue: dict[str, Any]) -> None:
    run_monitor(DAY + timedelta(days=12))
    with FakeSlack() as fake:
        dispatch(wiring.engine(), slack(fake), get_policy())
        sent = json.dumps(fake.messages)
    needles = personal_needles(overdue["inbox"])
    assert len(needles) > 50 and "CH-2026-" in sent
    assert leaks(sent, needles) == []


def test_two_dispatchers_started_together_never_send_the_same_alert(overdue: dict[str, Any]) -> None:
    # PostgreSQL's dispatchers skip each other's locked rows; SQLite's re-check their claim as they take it.
    run_monitor(DAY + timedelta(days=20))
    with FakeSlack() as fake:
        results: list[Any] = []
        start = threading.Barrier(2)

        def run() -> None:
            start.wait()
            results.append(dispatch(wiring.engine(), slack(fake), get_policy()))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dispatch(wiring.engine(), slack(fake), get_policy())  # whatever a lease held back
        seen = keys_at(fake)
    assert set(seen.values()) == {1}
    assert set(seen) == {a["dedupe_key"] for a in outbox()}


def test_a_dispatcher_claiming_between_anothers_read_and_write_never_takes_the_same_alerts(
    overdue: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.types import utcnow
    from tasks.bulk import one_of

    run_monitor(DAY + timedelta(days=5))
    pending = {a["id"] for a in outbox()}
    second: list[dict[str, Any]] = []

    def the_other_claims_first(conn: Any, column: Any, values: Any) -> Any:
        # Called as the first dispatcher builds its claim, after it read its rows: the second claims in full now.
        monkeypatch.setattr("tasks.notify.one_of", one_of)
        second.extend(notify._claim(wiring.engine(), limit=len(pending), now=utcnow()))
        return one_of(conn, column, values)

    monkeypatch.setattr("tasks.notify.one_of", the_other_claims_first)
    first = notify._claim(wiring.engine(), limit=len(pending), now=utcnow())
    mine, theirs = {a["id"] for a in first}, {a["id"] for a in second}
    assert not mine & theirs  # PostgreSQL: the second skipped the locked rows; SQLite: the first's write re-checked
    assert mine | theirs == pending


@pytest.mark.postgres
def test_a_simulated_fortnight_with_slack_randomly_failing_delivers_every_alert_exactly_once(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from iasu.simulation import Behaviour, ensure_roster
    from tests.integration.test_scheduling import run_night_with_outcomes

    monkeypatch.setenv("IASU_DATABASE_URL", pg_url)
    monkeypatch.setenv("IASU_POLICY_FILE", str(policy_with(tmp_path, a="timeout_seconds: 10=>timeout_seconds: 1")))
    wiring.reset()
    with wiring.engine().begin() as conn:
        ensure_roster(conn, cipher=wiring.cipher(), actor="test")
    start = date(2026, 8, 24)
    write_days(tmp_path / "inbox", start, days=10, per_day=12, dirty=0.0, seed=77)
    draw = random.Random(5)
    # Retry-After 0: a rate-limited night still exhausts the client's retries, in seconds rather than a minute.
    with FakeSlack(hang_seconds=1.5, retry_after=0) as fake:
        for i in range(10):
            day = start + timedelta(days=i)
            run_night_with_outcomes(
                tmp_path / "inbox", day, tmp_path / "docs", behaviour=Behaviour(never=0.25, on_time=0.6)
            )
            run_monitor(day)
            fake.mode = draw.choice(["ok", "ok", "down", "server_error", "rate_limited"])
            if draw.random() < 0.3:
                fake.fail_next(1, "hang")
            dispatch(wiring.engine(), slack(fake), get_policy())
        fake.mode = "ok"
        dispatch(wiring.engine(), slack(fake), get_policy())
        seen = keys_at(fake)
    alerts = outbox()
    # Withdrawn: never tried, and its contact was done by a later night before a dispatch could send it.
    assert {a["status"] for a in alerts} <= {"sent", "withdrawn"}
    sent = {a["dedupe_key"] for a in alerts if a["status"] == "sent"}
    assert set(seen) == sent and set(seen.values()) == {1}
    assert {a["level"] for a in alerts if a["kind"] == "missed_contact"} >= {1, 2}


def test_when_a_run_cannot_take_everything_missed_deadlines_go_first(overdue: dict[str, Any]) -> None:
    """A night's new-case announcements are queued before its missed deadlines, yet the deadlines are sent first."""
    run_monitor(DAY + timedelta(days=12))
    pending = [a for a in outbox() if a["status"] == "pending"]
    missed = sorted((a for a in pending if a["kind"] == "missed_contact"), key=lambda a: (-a["level"], a["id"]))
    assert missed and any(a["kind"] == "new_high_risk" and a["id"] < missed[0]["id"] for a in pending)
    with FakeSlack() as fake:
        result = dispatch(wiring.engine(), slack(fake), get_policy(), limit=len(missed) - 1)
    sent = [a for a in outbox() if a["status"] == "sent"]
    assert result.sent == len(sent) == len(missed) - 1
    assert {a["id"] for a in sent} == {a["id"] for a in missed[:-1]}
    assert {a["level"] for a in sent} >= {max(a["level"] for a in missed)}


def test_each_missed_contact_is_queued_with_the_payload_and_channel_its_rules_give(overdue: dict[str, Any]) -> None:
    # Pins every column of every missed-contact alert against the rules applied to the stored contact, case and
    # worker, so a faster way of building the same rows (in SQL, say) has to give exactly these.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from models import Case, Contact, Staff
    from rules.calendar import calendar_for
    from rules.clock import end_of_day
    from rules.codes import Force, Queue
    from rules.escalation import channel_for, dedupe_key, escalation_level
    from tasks.staff import add_staff

    contacts = Contact.__table__  # type: ignore[attr-defined]
    cases = Case.__table__  # type: ignore[attr-defined]
    staff = Staff.__table__  # type: ignore[attr-defined]
    policy = get_policy()
    with wiring.engine().begin() as conn:
        # Workers for one force's queues (one of them without a Slack id, one made inactive afterwards), so some
        # alerts name a worker and mention them, some name one who has left, and the rest name nobody.
        forces = sorted({str(f) for f in conn.execute(select(cases.c.force).distinct()).scalars()})
        force = Force(forces[0])
        for n, queue in enumerate(Queue):
            add_staff(
                conn,
                staff_code=f"T-{queue.value[:3].upper()}",
                queue=queue,
                force=force,
                capacity=3,
                slack_user_id=None if n == 0 else f"U0TEST{n}",
                cipher=wiring.cipher(),
                actor="test",
            )
        schedule(conn, policy=policy, run_date=DAY, actor="test", timezone="Europe/London")
        conn.execute(
            staff.update().where(staff.c.staff_code == f"T-{list(Queue)[-1].value[:3].upper()}").values(active=False)
        )
    days = [DAY + timedelta(days=d) for d in (5, 12, 20)]
    counted = [run_monitor(day) for day in days]

    expected: dict[str, dict[str, Any]] = {}
    by_level: list[Counter[str]] = []
    with wiring.engine().connect() as conn:
        rows = (
            conn.execute(
                select(
                    contacts,
                    cases.c.case_ref,
                    cases.c.force,
                    cases.c.queue,
                    cases.c.tier,
                    staff.c.staff_code,
                    staff.c.slack_user_id,
                    staff.c.active,
                )
                .join(cases, cases.c.id == contacts.c.case_id)
                .outerjoin(staff, staff.c.id == contacts.c.assigned_staff_id)
                .where(contacts.c.status == "pending")
            )
            .mappings()
            .all()
        )
    for day in days:
        now = end_of_day(day, "Europe/London")
        levels: Counter[str] = Counter()
        for r in rows:
            cal = calendar_for(Force(r["force"]), policy, "Europe/London")
            level = escalation_level(r["due_at"], r["completed_at"], now, cal, policy)
            if level == 0:
                continue
            levels[str(level)] += 1
            worker = r["staff_code"] if r["active"] else None
            key = dedupe_key(r["id"], level, due_at=r["due_at"], original_due_at=r["original_due_at"])
            expected.setdefault(
                key,
                {
                    "kind": "missed_contact",
                    "level": level,
                    "case_id": r["case_id"],
                    "contact_id": r["id"],
                    "channel": channel_for(
                        level,
                        queue_channel=policy.queues[Queue(r["queue"])].channel,
                        force=Force(r["force"]),
                        policy=policy,
                    ),
                    "status": "pending",
                    "attempts": 0,
                    "payload": {
                        "case_ref": r["case_ref"],
                        "kind": r["kind"],
                        "queue": r["queue"],
                        "tier": r["tier"],
                        "level": level,
                        "due_local": r["due_at"].astimezone(ZoneInfo("Europe/London")).strftime("%a %d %b %Y %H:%M"),
                        "working_days_late": cal.working_days_between(cal.local_date(r["due_at"]), day),
                        "staff_code": worker,
                        "slack_user_id": (r["slack_user_id"] if r["active"] else None) if level == 1 else None,
                    },
                },
            )
        by_level.append(levels)
    assert counted == [{str(lv): levels.get(str(lv), 0) for lv in (1, 2, 3)} for levels in by_level]
    queued = {
        a["dedupe_key"]: {
            k: a[k] for k in ("kind", "level", "case_id", "contact_id", "channel", "status", "attempts", "payload")
        }
        for a in outbox()
        if a["kind"] == "missed_contact"
    }
    assert queued == expected
    # The cases the rows cover: every level, a worker named and mentioned, one named but not mentioned (no Slack
    # id, or past level 1), and alerts naming nobody (no worker, or one no longer active).
    payloads = [a["payload"] for a in queued.values()]
    assert {p["level"] for p in payloads} == {1, 2, 3}
    assert any(p["slack_user_id"] for p in payloads) and any(
        p["staff_code"] and not p["slack_user_id"] for p in payloads
    )
    assert any(p["staff_code"] is None for p in payloads)
    assert all(isinstance(a["created_at"], datetime) and a["created_at"].tzinfo is not None for a in outbox())
