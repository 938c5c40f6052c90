"""one open return per order line unit

A return now names the order line it takes back and which unit of it (1..quantity), and
(order line, unit) is unique, so an item cannot be returned twice at once. Existing returns
are attached to their order's line of that product and numbered in creation order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_LINE = """
UPDATE returns SET order_line_id = (
    SELECT min(order_lines.id) FROM order_lines
    WHERE order_lines.order_id = returns.order_id
      AND order_lines.product_id = returns.product_id
)
"""
BACKFILL_UNIT = """
UPDATE returns SET unit = (
    SELECT count(*) FROM returns AS earlier
    WHERE earlier.order_line_id = returns.order_line_id AND earlier.id <= returns.id
)
"""


def upgrade() -> None:
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_line_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("unit", sa.Integer(), nullable=True))

    op.execute(BACKFILL_LINE)
    op.execute(BACKFILL_UNIT)

    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.alter_column("order_line_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_returns_order_line_id_unit"), ["order_line_id", "unit"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_returns_order_line_id_order_lines"),
            "order_lines",
            ["order_line_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_returns_order_line_id_order_lines"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_returns_order_line_id_unit"), type_="unique")
        batch_op.drop_column("unit")
        batch_op.drop_column("order_line_id")
