"""token spend: LLM tokens per UTC day and user, for the daily budgets

One row per (day, Slack user) and one per day for everyone together (user_id "*"), each
incremented atomically after every LLM call, so the budgets hold across processes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 11:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_spend",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "user_id", name=op.f("pk_token_spend")),
    )


def downgrade() -> None:
    op.drop_table("token_spend")
