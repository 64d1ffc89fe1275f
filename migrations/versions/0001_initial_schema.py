"""Initial schema: intake, referrals, people, cases, staff, contacts, alerts, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 04:04:08.757308
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import models.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "actor", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False
        ),
        sa.Column(
            "os_user", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column(
            "action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column(
            "entity", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column(
            "entity_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "reason_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)

    op.create_table(
        "night_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column(
            "flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column(
            "started_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "finished_at", models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("night_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_night_runs_run_date"), ["run_date"], unique=False
        )

    op.create_table(
        "run_watermarks",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("last_completed_date", sa.Date(), nullable=False),
        sa.Column(
            "updated_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "staff_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column(
            "name_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("queue", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("force", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "slack_user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column(
            "created_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("staff_code"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "case_ref", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False
        ),
        sa.Column("force", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column("tier", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("queue", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "interventions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("turned_away_for_capacity", sa.Boolean(), nullable=False),
        sa.Column(
            "decided_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False
        ),
        sa.Column(
            "policy_version", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column("assigned_staff_id", sa.Integer(), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("opened_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "outcome", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["assigned_staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_ref"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cases_assigned_staff_id"),
            ["assigned_staff_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_cases_force"), ["force"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_queue"), ["queue"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_status"), ["status"], unique=False)

    op.create_table(
        "ingest_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night_run_id", sa.Integer(), nullable=True),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column(
            "file_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False
        ),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column(
            "sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column(
            "held_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True
        ),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("held_rows", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["night_run_id"],
            ["night_runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ingest_batches_night_run_id"), ["night_run_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ingest_batches_run_date"), ["run_date"], unique=False
        )

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("due_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column("assigned_staff_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "outcome", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column(
            "completed_at", models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "created_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["assigned_staff_id"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contacts_assigned_staff_id"),
            ["assigned_staff_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_contacts_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            "ix_contacts_pending_due",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            "uq_contacts_one_pending_per_kind",
            ["case_id", "kind"],
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column(
            "source_ref", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("force", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("received_date", sa.Date(), nullable=False),
        sa.Column(
            "referring_agency",
            sqlmodel.sql.sqltypes.AutoString(length=32),
            nullable=False,
        ),
        sa.Column(
            "crime_ref", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column(
            "relationship", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column(
            "behaviours",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("duration_months", sa.Integer(), nullable=True),
        sa.Column("incident_date", sa.Date(), nullable=True),
        sa.Column("sdash_victim_very_frightened", sa.Boolean(), nullable=False),
        sa.Column("sdash_previous_stalking", sa.Boolean(), nullable=False),
        sa.Column("sdash_property_damage", sa.Boolean(), nullable=False),
        sa.Column("sdash_visits_more_than_3_a_week", sa.Boolean(), nullable=False),
        sa.Column("sdash_loitering_following", sa.Boolean(), nullable=False),
        sa.Column("sdash_threats_violence", sa.Boolean(), nullable=False),
        sa.Column("sdash_third_parties_harassed", sa.Boolean(), nullable=False),
        sa.Column("sdash_violence_this_episode", sa.Boolean(), nullable=False),
        sa.Column("sdash_others_recruited", sa.Boolean(), nullable=False),
        sa.Column("sdash_drugs_alcohol", sa.Boolean(), nullable=False),
        sa.Column("sdash_past_violence", sa.Boolean(), nullable=False),
        sa.Column("sdash_yes_count", sa.Integer(), nullable=False),
        sa.Column("srp", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column(
            "markers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "notes_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batches.id"],
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "source_ref", name="uq_referrals_source_ref"),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referrals_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_referrals_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_referrals_force"), ["force"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_referrals_received_date"), ["received_date"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "dedupe_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False
        ),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column(
            "channel", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True
        ),
        sa.Column(
            "slack_ts", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
        ),
        sa.Column(
            "created_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("sent_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alerts_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alerts_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alerts_status"), ["status"], unique=False)

    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "forename_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "surname_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "dob_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "phone_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "email_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "address_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "postcode_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "pnc_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "name_dob_index", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column(
            "pnc_index", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("referral_id", "role", name="uq_people_referral_role"),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_people_name_dob_index"), ["name_dob_index"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_people_pnc_index"), ["pnc_index"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_people_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "quarantine_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column(
            "source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column(
            "source_ref", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column(
            "failed_expectations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "raw_enc",
            sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column(
            "created_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "resolved_at", models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("resolved_by_referral_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batches.id"],
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_referral_id"],
            ["referrals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "line_no"),
    )
    with op.batch_alter_table("quarantine_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_entries_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_quarantine_entries_source_ref"), ["source_ref"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_quarantine_entries_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantine_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_entries_status"))
        batch_op.drop_index(batch_op.f("ix_quarantine_entries_source_ref"))
        batch_op.drop_index(batch_op.f("ix_quarantine_entries_batch_id"))

    op.drop_table("quarantine_entries")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_referral_id"))
        batch_op.drop_index(batch_op.f("ix_people_pnc_index"))
        batch_op.drop_index(batch_op.f("ix_people_name_dob_index"))

    op.drop_table("people")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_status"))
        batch_op.drop_index(batch_op.f("ix_alerts_contact_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_case_id"))

    op.drop_table("alerts")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_received_date"))
        batch_op.drop_index(batch_op.f("ix_referrals_force"))
        batch_op.drop_index(batch_op.f("ix_referrals_case_id"))
        batch_op.drop_index(batch_op.f("ix_referrals_batch_id"))

    op.drop_table("referrals")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_contacts_one_pending_per_kind",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index(
            "ix_contacts_pending_due",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index(batch_op.f("ix_contacts_case_id"))
        batch_op.drop_index(batch_op.f("ix_contacts_assigned_staff_id"))

    op.drop_table("contacts")
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_batches_run_date"))
        batch_op.drop_index(batch_op.f("ix_ingest_batches_night_run_id"))

    op.drop_table("ingest_batches")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_status"))
        batch_op.drop_index(batch_op.f("ix_cases_queue"))
        batch_op.drop_index(batch_op.f("ix_cases_force"))
        batch_op.drop_index(batch_op.f("ix_cases_assigned_staff_id"))

    op.drop_table("cases")
    op.drop_table("staff")
    op.drop_table("run_watermarks")
    with op.batch_alter_table("night_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_night_runs_run_date"))

    op.drop_table("night_runs")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
