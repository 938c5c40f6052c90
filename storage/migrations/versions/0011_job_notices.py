"""job notices: PostgreSQL tells listening workers when a job is queued

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# storage.job_notices.JOB_NOTICE_CHANNEL; spelled out so that the migration never changes.
CHANNEL = "supportbot_jobs"


def upgrade() -> None:
    # SQLite: one process answers from one file, and its worker is woken in process.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION supportbot_notify_job() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    # Row level, so the WHEN clause sees the row; PostgreSQL delivers identical
    # notifications of one transaction once, so a batch of 40 inserts is one notice.
    op.execute(
        """
        CREATE TRIGGER jobs_notify_queued
        AFTER INSERT OR UPDATE OF status ON jobs
        FOR EACH ROW WHEN (NEW.status = 'queued')
        EXECUTE FUNCTION supportbot_notify_job()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS jobs_notify_queued ON jobs")
    op.execute("DROP FUNCTION IF EXISTS supportbot_notify_job()")
