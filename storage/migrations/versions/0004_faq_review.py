"""faq review: only approved FAQs are knowledge

A FAQ now has a review state: "approved" FAQs answer every customer, "pending" ones (made
by someone who is not a support agent) wait for an agent, "discarded" ones never count.
Existing FAQs were already knowledge, so they are marked approved; new rows default to
pending in the model, so a path that forgets to decide teaches nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("faqs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review", sa.String(length=16), nullable=False, server_default="approved")
        )
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("reviewed_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("faqs", schema=None) as batch_op:
        batch_op.alter_column("review", existing_type=sa.String(length=16), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("faqs", schema=None) as batch_op:
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("review")
