"""customers' trust and verdict: confirmations, votes, CSAT, the support numbers

pending_actions: side effects the bot prepared and the customer confirms, changes or
cancels (one per request and kind; decided once). reply_votes: one row per reply message
and Slack user (a changed vote updates it), with the run id of the trace that wrote the
reply. csat_surveys: the one question a resolved ticket's customer is asked (unique
ticket), with their score and comment. On tickets, for `supportbot report`:
primary_intent, escalated_at, person_involved, first_response_s, resolved_at,
resolution_s, and an index on created_at that covers them. Tickets from before this
migration have no figures (NULL, person_involved false): a report over their period
counts them as tickets without times.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 00:49:38.488970
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
        "pending_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("requester", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("reply_ts", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_pending_actions_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_actions")),
        sa.UniqueConstraint("request_id", "kind", name=op.f("uq_pending_actions_request_id_kind")),
    )
    with op.batch_alter_table("pending_actions", schema=None) as batch_op:
        batch_op.create_index("ix_pending_actions_created", ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pending_actions_ticket_id"), ["ticket_id"], unique=False
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

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("primary_intent", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("escalated_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("person_involved", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("first_response_s", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("resolved_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resolution_s", sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_tickets_report",
            [
                "created_at",
                "primary_intent",
                "person_involved",
                "first_response_s",
                "resolution_s",
                "escalated_at",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_report")
        batch_op.drop_column("resolution_s")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("first_response_s")
        batch_op.drop_column("person_involved")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("primary_intent")

    with op.batch_alter_table("reply_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reply_votes_ticket_id"))
        batch_op.drop_index("ix_reply_votes_run")

    op.drop_table("reply_votes")
    with op.batch_alter_table("pending_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_actions_ticket_id"))
        batch_op.drop_index("ix_pending_actions_created")

    op.drop_table("pending_actions")
    with op.batch_alter_table("csat_surveys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_csat_surveys_slack_user_id"))

    op.drop_table("csat_surveys")
