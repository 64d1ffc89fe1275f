"""The operator-tunable policy as typed, validated data (loading the file is iasu.policy's job)."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.codes import Force, Marker, Queue, ReferringAgency, SrpLevel, Tier
from rules.gate import RowCountGate

LinkSignal = Literal["name_dob", "pnc"]


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt setting must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SdashBands(Strict):
    """Minimum S-DASH yes answers for each tier above standard."""

    high: int = Field(ge=0, le=11)
    medium: int = Field(ge=0, le=11)

    @model_validator(mode="after")
    def _ordered(self) -> SdashBands:
        if self.medium > self.high:
            raise ValueError("medium must not be above high")
        return self


class Risk(Strict):
    """How a referral's own facts set its tier."""

    sdash_bands: SdashBands
    high_markers: tuple[Marker, ...] = ()
    raise_markers: tuple[Marker, ...] = ()
    srp_floor: dict[SrpLevel, Tier] = Field(default_factory=dict)


class Linkage(Strict):
    """How perpetrators are linked across referrals and what a linked history means."""

    signals: tuple[LinkSignal, ...] = ("name_dob", "pnc")
    serial_tier: Tier = Tier.high
    repeat_raise_after: int = Field(default=1, ge=1)
    duplicate_window_days: int = Field(default=14, ge=0)


class Unit(Strict):
    """The unit's intake: which cases it takes and how many it can carry."""

    capacity: dict[Force, int]
    take_tiers: tuple[Tier, ...] = (Tier.high,)
    take_markers_at_medium: tuple[Marker, ...] = ()
    take_serial: bool = True
    overflow_queue: Queue = Queue.police_investigation

    @model_validator(mode="after")
    def _sane(self) -> Unit:
        if self.overflow_queue is Queue.unit:
            raise ValueError("overflow_queue must be a partner queue, not unit")
        missing = set(Force) - set(self.capacity)
        if missing:
            raise ValueError(f"capacity missing for force(s): {', '.join(sorted(missing))}")
        if any(v < 0 for v in self.capacity.values()):
            raise ValueError("capacity must not be negative")
        return self


class PartnerRoute(Strict):
    """One routing rule for cases the unit does not take; all given conditions must hold."""

    queue: Queue
    markers_any: tuple[Marker, ...] = ()
    referring_agency_any: tuple[ReferringAgency, ...] = ()
    tiers: tuple[Tier, ...] = ()

    @model_validator(mode="after")
    def _partner(self) -> PartnerRoute:
        if self.queue is Queue.unit:
            raise ValueError("partner_routes cannot route to the unit queue")
        return self


# A Slack channel's id (C0123ABCD), never its name: ids survive a rename, and nothing else reaches Slack.
ChannelId = Annotated[str, Field(min_length=1, pattern=r"^[A-Z0-9]+$")]


class QueueConfig(Strict):
    """Where a queue's alerts go."""

    channel: ChannelId


class Intake(Strict):
    """The batch gate's thresholds."""

    row_count_ratio: float = Field(default=5.0, gt=1.0)
    row_count_slack: int = Field(default=20, ge=0)
    row_count_min_history: int = Field(default=5, ge=1)

    def gate(self) -> RowCountGate:
        """The gate these settings describe."""
        return RowCountGate(
            ratio=self.row_count_ratio, slack=self.row_count_slack, min_history=self.row_count_min_history
        )


class ForceConfig(Strict):
    """Per-force settings: whose bank holidays apply."""

    # GB subdivision code of the `holidays` package: ENG (England), WLS (Wales), SCT, NIR.
    jurisdiction: Literal["ENG", "WLS", "SCT", "NIR"] = "ENG"


class Contacts(Strict):
    """Contact schedules: first victim contact, victim follow-ups, perpetrator check-ins."""

    end_of_working_day: time = time(17, 0)
    victim_first_contact_working_days: dict[Tier, int]
    victim_followup_days: dict[Tier, int]
    perpetrator_checkin_days: dict[Tier, int]
    perpetrator_checkin_queues: tuple[Queue, ...] = (Queue.unit,)
    no_answer_retry_working_days: int = Field(default=1, ge=1)

    @field_validator("end_of_working_day", mode="before")
    @classmethod
    def _wall_clock(cls, value: object) -> object:
        # Unquoted, YAML reads 17:00 as the number 1020 (minutes, in base 60), which pydantic would take as
        # seconds past midnight; an offset would make it no local time at all. Only "HH:MM" is a working day's end.
        if isinstance(value, time) and value.tzinfo is None:
            return value
        if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError('must be a local time in quotes, "HH:MM" (unquoted, YAML reads 17:00 as a number)')
        return value.strip()

    @model_validator(mode="after")
    def _every_tier(self) -> Contacts:
        for name in ("victim_first_contact_working_days", "victim_followup_days", "perpetrator_checkin_days"):
            table: dict[Tier, int] = getattr(self, name)
            missing = set(Tier) - set(table)
            if missing:
                raise ValueError(f"{name} missing tier(s): {', '.join(sorted(missing))}")
            if any(v < 1 for v in table.values()):
                raise ValueError(f"{name} must be at least 1")
        return self


class Escalation(Strict):
    """Who hears of a missed contact, and when: level 1 the team, 2 the supervisor, 3 the unit lead."""

    level2_after_working_days: int = Field(default=2, ge=1)
    level3_after_working_days: int = Field(default=5, ge=2)
    supervisor_channels: dict[Force, ChannelId]
    lead_channels: dict[Force, ChannelId]

    @model_validator(mode="after")
    def _ordered(self) -> Escalation:
        if self.level3_after_working_days <= self.level2_after_working_days:
            raise ValueError("level3_after_working_days must be after level2_after_working_days")
        for name in ("supervisor_channels", "lead_channels"):
            channels: dict[Force, str] = getattr(self, name)
            if set(Force) - set(channels):
                raise ValueError(f"{name} missing force(s): {', '.join(sorted(set(Force) - set(channels)))}")
        return self


class Alerts(Strict):
    """Delivery of alerts to Slack."""

    group_threshold: int = Field(default=5, ge=1)  # more than this for one channel in one run: one grouped message
    max_attempts: int = Field(default=5, ge=1)
    circuit_breaker_failures: int = Field(default=3, ge=1)  # consecutive outages before a dispatch stops
    timeout_seconds: float = Field(default=10.0, gt=0)
    quarantine_ops_threshold: int = Field(default=20, ge=0)  # quarantined rows in a night above this: ops alert


class Policy(Strict):
    """Everything an operator may tune: one version of it is recorded with every decision."""

    version: str = Field(min_length=1, max_length=32)
    risk: Risk
    linkage: Linkage = Linkage()
    unit: Unit
    partner_routes: tuple[PartnerRoute, ...]
    queues: dict[Queue, QueueConfig]
    ops_channel: ChannelId  # files held, unassigned cases, failed alerts
    outcomes: tuple[str, ...] = Field(min_length=1)
    intake: Intake = Intake()
    forces: dict[Force, ForceConfig] = Field(default_factory=lambda: {f: ForceConfig() for f in Force})
    contacts: Contacts
    escalation: Escalation
    alerts: Alerts = Alerts()

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        if set(Force) - set(self.forces):
            raise ValueError(f"forces missing: {', '.join(sorted(set(Force) - set(self.forces)))}")
        missing = set(Queue) - set(self.queues)
        if missing:
            raise ValueError(f"queues missing: {', '.join(sorted(missing))}")
        last = self.partner_routes[-1] if self.partner_routes else None
        if last is None or last.markers_any or last.referring_agency_any or last.tiers:
            raise ValueError("partner_routes must end with a rule without conditions (the default queue)")
        return self
