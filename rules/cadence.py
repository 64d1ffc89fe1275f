"""Contact cadence: when the next contact of each kind falls due on an open case.

The schedule is rolling: only the next due contact of each kind exists, and completing
one creates the one after it. Every due value is an aware UTC instant from `WorkingCalendar.due_at`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from rules.calendar import WorkingCalendar
from rules.codes import ContactKind, Queue, Tier
from rules.policy import Policy
from rules.triage import TIER_RANK

VICTIM_KINDS: tuple[ContactKind, ...] = (ContactKind.victim_first_contact, ContactKind.victim_followup)


def applicable_kinds(queue: Queue, policy: Policy) -> tuple[ContactKind, ...]:
    """Contact kinds a case in this queue is scheduled for."""
    if queue in policy.contacts.perpetrator_checkin_queues:
        return (*VICTIM_KINDS, ContactKind.perpetrator_checkin)
    return VICTIM_KINDS


def _interval_days(kind: ContactKind, tier: Tier, policy: Policy) -> int:
    if kind is ContactKind.victim_followup:
        return policy.contacts.victim_followup_days[tier]
    if kind is ContactKind.perpetrator_checkin:
        return policy.contacts.perpetrator_checkin_days[tier]
    raise ValueError(f"{kind} is counted in working days, not calendar days")


def _due(kind: ContactKind, tier: Tier, start: date, policy: Policy, cal: WorkingCalendar) -> datetime:
    # First contact is a working-day promise to the victim; the repeating contacts are a rhythm
    # in calendar days (weekly, fortnightly, monthly), moved on only when they land off work.
    if kind is ContactKind.victim_first_contact:
        return cal.due_at(cal.add_working_days(start, policy.contacts.victim_first_contact_working_days[tier]))
    return cal.due_at(start + timedelta(days=_interval_days(kind, tier, policy)))


def initial_contacts(
    tier: Tier, queue: Queue, opened_on: date, policy: Policy, cal: WorkingCalendar
) -> list[tuple[ContactKind, datetime]]:
    """Contacts a newly opened case starts with: first victim contact and, where it applies, a check-in."""
    # No victim follow-up yet: it is counted from the day the first contact is actually made.
    contacts = [
        (ContactKind.victim_first_contact, _due(ContactKind.victim_first_contact, tier, opened_on, policy, cal))
    ]
    if ContactKind.perpetrator_checkin in applicable_kinds(queue, policy):
        contacts.append(
            (ContactKind.perpetrator_checkin, _due(ContactKind.perpetrator_checkin, tier, opened_on, policy, cal))
        )
    return contacts


def next_after_completion(
    kind: ContactKind, tier: Tier, queue: Queue, completed_on: date, policy: Policy, cal: WorkingCalendar
) -> tuple[ContactKind, datetime] | None:
    """The contact that completing one of this kind creates, or None when none follows."""
    if kind in VICTIM_KINDS:
        return ContactKind.victim_followup, _due(ContactKind.victim_followup, tier, completed_on, policy, cal)
    # A case moved out of the unit's queues keeps its victim contacts but its check-ins stop.
    if kind not in applicable_kinds(queue, policy):
        return None
    return kind, _due(kind, tier, completed_on, policy, cal)


def retry_after_no_answer(attempted_on: date, policy: Policy, cal: WorkingCalendar) -> datetime:
    """New due time of a contact whose attempt did not reach the person."""
    return cal.due_at(cal.add_working_days(attempted_on, policy.contacts.no_answer_retry_working_days))


def rescheduled(new_date: date, cal: WorkingCalendar) -> datetime:
    """Due time of a contact rescheduled to a date: end of that working day, or of the next one."""
    return cal.due_at(new_date)


def after_tier_change(
    kind: ContactKind,
    new_tier: Tier,
    changed_on: date,
    current_due: datetime,
    policy: Policy,
    cal: WorkingCalendar,
    *,
    old_tier: Tier,
) -> datetime:
    """Due time of a pending contact after the case's tier changes from old_tier to new_tier."""
    recomputed = _due(kind, new_tier, changed_on, policy, cal)
    # A step down relaxes the schedule plainly from the day of the change: the lower tier's
    # cadence is what the case now needs, and a deadline already missed at the old tier has
    # been recorded by escalation. Otherwise (up, or a re-referral at the same tier) the
    # contact may only come sooner: more risk must never push a promised contact later,
    # nor may a re-referral reset a deadline that is already running or overdue.
    if TIER_RANK[new_tier] < TIER_RANK[old_tier]:
        return recomputed
    return min(recomputed, current_due)
