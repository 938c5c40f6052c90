"""feedback: votes on replies and the satisfaction question of resolved tickets

reply_votes: one row per reply message and Slack user (a changed vote updates it), with
the run id of the trace that wrote the reply; counted on the ticket's triage card.
csat_surveys: the one question a resolved ticket's customer is asked (unique ticket),
with their score and comment once they answer.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 00:23:43.766948
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "csat_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("asked_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_csat_surveys_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat_surveys")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_csat_surveys_ticket_id")),
    )
    with op.batch_alter_table("csat_surveys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_csat_surveys_slack_user_id"), ["slack_user_id"], unique=False
        )

    op.create_table(
        "reply_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("vote", sa.String(length=8), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_reply_votes_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_votes")),
        sa.UniqueConstraint(
            "channel_id",
            "message_ts",
            "slack_user_id",
            name=op.f("uq_reply_votes_channel_id_message_ts_slack_user_id"),
        ),
    )
    with op.batch_alter_table("reply_votes", schema=None) as batch_op:
        batch_op.create_index("ix_reply_votes_run", ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reply_votes_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reply_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reply_votes_ticket_id"))
        batch_op.drop_index("ix_reply_votes_run")

    op.drop_table("reply_votes")
    with op.batch_alter_table("csat_surveys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_csat_surveys_slack_user_id"))

    op.drop_table("csat_surveys")
