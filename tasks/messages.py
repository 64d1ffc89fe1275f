"""Slack messages built from alert payloads: Block Kit with a plain-text fallback, codes and references only.

Payloads hold case references, codes, counts and staff ids; nothing here can
add a personal value, because nothing here reads one.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from dataclasses import dataclass
from typing import Any

MAX_BLOCKS = 50  # Block Kit's limit per message
MAX_SECTION_CHARS = 3000  # Block Kit's limit per section text
# chat.postMessage refuses blocks holding more than about 12,000 characters of text in all
# (msg_blocks_too_long), whatever the per-block limits allow: a grouped message stays below with margin.
MAX_MESSAGE_CHARS = 11_000
# A grouped message's kinds of alert, named in this order in its header and its plain text.
GROUPED_KINDS = {"new_high_risk": "new high-risk", "missed_contact": "missed contact", "digest": "digest", "ops": "ops"}
GROUPED_OPS_CHARS = 1000  # an ops event in a grouped message: its summary, cut where it would crowd the rest
# Dedupe keys ending in a case number (new_high_risk:CH-2026-000123) run on across a night's new cases.
NUMBERED_KEY = re.compile(r"^(.*-)(\d{6})$")
LEVEL_WHO = {1: "team", 2: "supervisors", 3: "unit lead"}
KIND_WORDS = {
    "victim_first_contact": "first contact with the victim",
    "victim_followup": "victim follow-up",
    "perpetrator_checkin": "perpetrator check-in",
}


@dataclass(frozen=True)
class Message:
    """One chat.postMessage: fallback text, blocks, and the dedupe keys it delivers (sent as metadata)."""

    text: str
    blocks: list[dict[str, Any]]
    dedupe_keys: list[str]

    def metadata(self) -> dict[str, Any]:
        """Message metadata carrying the dedupe keys, so a resend can be checked against the channel's history."""
        payload: dict[str, Any] = {"dedupe_key": self.dedupe_keys[0]}
        if len(self.dedupe_keys) > 1:
            listed, runs = compact_keys(self.dedupe_keys)
            if listed:
                payload["dedupe_keys"] = listed
            if runs:
                payload["dedupe_runs"] = runs
        return {"event_type": "iasu_alert", "event_payload": payload}


def compact_keys(keys: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Keys as listed, but consecutive numbered ones as {prefix, first, last}: metadata stays small."""
    listed: list[str] = []
    runs: list[dict[str, Any]] = []
    for key in keys:
        match = NUMBERED_KEY.match(key)
        if match is None:
            listed.append(key)
            continue
        prefix, number = match.group(1), int(match.group(2))
        if runs and runs[-1]["prefix"] == prefix and runs[-1]["last"] == number - 1:
            runs[-1]["last"] = number
        else:
            runs.append({"prefix": prefix, "first": number, "last": number})
    return listed, runs


def keys_in_metadata(payload: dict[str, Any]) -> list[str]:
    """Every dedupe key a message's metadata names, listed or within a run (compact_keys undone)."""
    keys = [payload.get("dedupe_key"), *payload.get("dedupe_keys", [])]
    for run in payload.get("dedupe_runs", []):
        first, last = int(run["first"]), int(run["last"])
        if 0 <= first <= last < 10**6:  # six-digit case numbers; anything else is not a run this code wrote
            keys += [f"{run['prefix']}{n:06d}" for n in range(first, last + 1)]
    return list(dict.fromkeys(str(k) for k in keys if k))  # the first key is also among the listed ones


def _escaped(text: str) -> str:
    """Text shown as it is in Slack's mrkdwn (its three control characters escaped as Slack documents)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION_CHARS]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_SECTION_CHARS]}]}


def _missed_head(p: dict[str, Any]) -> tuple[str, str]:
    """A missed contact's worker mention and reference with its kind, and how late it is."""
    mention = f"<@{p['slack_user_id']}> " if p.get("slack_user_id") else ""
    late = p["working_days_late"]
    lateness = "due today" if late == 0 else f"{late} working day{'s' if late != 1 else ''} late"
    return f"{mention}*{p['case_ref']}*: {KIND_WORDS.get(p['kind'], p['kind'])}", lateness


def missed_contact_text(p: dict[str, Any]) -> str:
    """One line for a missed contact: reference, kind, due, how late, level."""
    head, lateness = _missed_head(p)
    return (
        f"{head} was due {p['due_local']} ({lateness}), level {p['level']} ({LEVEL_WHO.get(p['level'], '?')}), "
        f"worker {p.get('staff_code') or 'unassigned'}"
    )


def render(alert_kind: str, payload: dict[str, Any], dedupe_key: str) -> Message:
    """The message for one alert."""
    if alert_kind == "missed_contact":
        line = missed_contact_text(payload)
        todo = "Make the contact and record it (`iasu contact record`), or reschedule it."
        see = f"See the case: `iasu case show {payload['case_ref']}`"
        return Message(
            text=f"Missed contact: {line}".replace("*", ""),
            blocks=[_section(f":warning: Missed contact\n{line}"), _section(todo), _context(see)],
            dedupe_keys=[dedupe_key],
        )
    if alert_kind == "new_high_risk":
        reasons = ", ".join(payload.get("reasons", []))
        line = f"*{payload['case_ref']}* ({payload['force']}): tier {payload['tier']}, queue {payload['queue']}"
        return Message(
            text=f"New high-risk case {payload['case_ref']}: tier {payload['tier']}; reasons {reasons}",
            blocks=[
                _section(f":rotating_light: New high-risk case\n{line}"),
                _section(f"Reasons: {reasons}"),
                _context(f"See the case: `iasu case show {payload['case_ref']}`"),
            ],
            dedupe_keys=[dedupe_key],
        )
    if alert_kind == "digest":
        return _digest(payload, dedupe_key)
    if payload.get("event") == "cases_unassigned":
        return _unassigned(payload, dedupe_key)
    # ops: its values come from outside (a held file's reason, a staff file's name), so Slack's control
    # characters are escaped: nothing in them can mention a channel or render a link.
    detail = _escaped(", ".join(f"{k}: {v}" for k, v in payload.items() if k != "event"))
    return Message(
        text=f"Ops: {payload.get('event', 'event')} ({detail})",
        blocks=[_section(f":gear: Ops: {payload.get('event', 'event')}"), _context(detail or "-")],
        dedupe_keys=[dedupe_key],
    )


def _digest(p: dict[str, Any], key: str) -> Message:
    levels = ", ".join(f"{lv}: {n}" for lv, n in sorted(p.get("overdue_by_level", {}).items())) or "none"
    queues = ", ".join(f"{q}: {n}" for q, n in sorted(p.get("overdue_by_queue", {}).items())) or "none"
    text = f"Daily digest {p['date']}: overdue by level {levels}; by queue {queues}; due today {p['due_today']}"
    return Message(text=text, blocks=[_section(f":clipboard: {text}")], dedupe_keys=[key])


def _unassigned(p: dict[str, Any], key: str) -> Message:
    where = ", ".join(f"{q}: {n}" for q, n in p.get("by_queue", {}).items())
    refs = ", ".join(p.get("case_refs", []))
    more = p["cases"] - len(p.get("case_refs", []))
    listed = f"{refs}{f' and {more} more' if more > 0 else ''}"
    head = f"{p['cases']} open case(s) have no eligible worker ({p['date']})"
    todo = "Add staff or raise a worker's capacity (`iasu staff add`, `iasu staff list`); the next night assigns them."
    # Every force's queues may be listed: as many sections as the counts need, each within Block Kit's limit.
    counts = [_section(part) for part in textwrap.wrap(f"By queue/force: {where}", MAX_SECTION_CHARS)]
    return Message(
        text=f"Ops: {head}; by queue/force {where}: {listed}",
        blocks=[_section(f":gear: Ops: {head}"), *counts, _section(listed), _context(todo)],
        dedupe_keys=[key],
    )


def grouped(items: list[tuple[str, dict[str, Any], str]]) -> list[Message]:
    """Many alerts for one channel as few messages within Slack's limits, each listing its case references."""
    messages: list[Message] = []
    sections: list[str] = []
    current: list[str] = []
    keys: list[str] = []
    refs: list[str] = []
    kinds: Counter[str] = Counter()  # alerts of each kind in the message being built
    chars = 0  # text characters in the message being built

    def close_section() -> None:
        if current:
            sections.append("\n".join(current))
            current.clear()

    def close_message() -> None:
        nonlocal chars
        close_section()
        if keys:
            # The plain text is what a notification shows: it says what the alerts are, not only how many.
            named = [*GROUPED_KINDS, *sorted(set(kinds) - set(GROUPED_KINDS))]  # a kind not named: its code
            what = ", ".join(f"{kinds[k]} {GROUPED_KINDS.get(k, k)}" for k in named if kinds[k])
            header = _section(f":warning: {len(keys)} alerts for this channel: {what}")
            text = f"{len(keys)} alerts ({what}){': ' if refs else ''}{', '.join(refs)}"[:MAX_SECTION_CHARS]
            messages.append(Message(text=text, blocks=[header, *map(_section, sections)], dedupe_keys=list(keys)))
        for bucket in (sections, keys, refs, kinds):
            bucket.clear()
        chars = 0

    for line, kind, line_keys, line_refs in _group_lines(items):
        if keys and chars + len(line) + 1 > MAX_MESSAGE_CHARS - 100:  # room for the header line
            close_message()
        if current and sum(len(x) + 1 for x in current) + len(line) > MAX_SECTION_CHARS:
            close_section()
        if len(sections) >= MAX_BLOCKS - 1:  # the header takes one block
            close_message()
        current.append(line)
        keys.extend(line_keys)
        refs.extend(line_refs)
        kinds[kind] += len(line_keys)
        chars += len(line) + 1
    close_message()
    return messages


def _group_lines(items: list[tuple[str, dict[str, Any], str]]) -> list[tuple[str, str, list[str], list[str]]]:
    """One line per alert, except new high-risk cases: consecutive references as one line (a night's are)."""
    lines: list[tuple[str, str, list[str], list[str]]] = []
    announced: list[tuple[str, int, str, str]] = []  # (prefix and year, number, reference, dedupe key)
    for kind, payload, key in items:
        prefix, _, number = str(payload.get("case_ref", "")).rpartition("-")
        if kind == "new_high_risk" and number.isdigit():
            announced.append((prefix, int(number), payload["case_ref"], key))
        else:
            refs = [str(payload["case_ref"])] if payload.get("case_ref") else []  # digests and ops name no case
            lines.append((_group_line(kind, payload, key), kind, [key], refs))
    run: list[tuple[str, int, str, str]] = []

    def close_run() -> None:
        if run:
            first, last = run[0][2], run[-1][2]
            span = f"*{first}*" if len(run) == 1 else f"*{first}* to *{last}* ({len(run)} cases)"
            lines.append((f"• new high-risk: {span}", "new_high_risk", [r[3] for r in run], [r[2] for r in run]))
            run.clear()

    for entry in sorted(announced):
        if run and (entry[0] != run[-1][0] or entry[1] != run[-1][1] + 1):
            close_run()
        run.append(entry)
    close_run()
    return lines


def _group_line(kind: str, payload: dict[str, Any], key: str) -> str:
    if kind == "missed_contact":
        head, lateness = _missed_head(payload)
        return f"• {head}, {lateness}, level {payload['level']}"
    if kind == "digest":  # the day's counts, not just the word: a grouped digest must still say them
        return f"• {_digest(payload, key).text}"
    if not payload.get("case_ref"):  # an alert about a failed ops alert names no case, only the alert
        summary = render(kind, payload, key).text  # an ops event's one-line summary
        return f"• {summary[:GROUPED_OPS_CHARS]}{'…' if len(summary) > GROUPED_OPS_CHARS else ''}"
    return f"• *{payload['case_ref']}*: {payload.get('event', kind)}"
