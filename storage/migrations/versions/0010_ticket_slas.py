"""ticket SLAs: priority, the clock's start, the first agent reply, breach flags

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORT_INDEX = (
    "created_at",
    "primary_intent",
    "person_involved",
    "first_response_s",
    "resolution_s",
    "escalated_at",
)
TIMES = (
    "sla_started_at",
    "agent_replied_at",
    "first_response_breached_at",
    "resolution_breached_at",
)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("priority", sa.String(length=16), server_default="normal", nullable=False)
        )
        for name in TIMES:
            batch.add_column(
                sa.Column(name, storage.models.UTCDateTime(timezone=True), nullable=True)
            )
    # `supportbot report` counts breaches from its covering index, as it does the rest.
    op.drop_index("ix_tickets_report", table_name="tickets")
    op.create_index(
        "ix_tickets_report",
        "tickets",
        [*REPORT_INDEX, "first_response_breached_at", "resolution_breached_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_report", table_name="tickets")
    op.create_index("ix_tickets_report", "tickets", list(REPORT_INDEX))
    with op.batch_alter_table("tickets") as batch:
        for name in (*reversed(TIMES), "priority"):
            batch.drop_column(name)
