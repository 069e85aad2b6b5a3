"""per-decision charges of real-time decisions; revocable API keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("charged_micros", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE decisions SET charged_micros = reserved_micros - held_micros WHERE source = 'decide' AND open"
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("revoked_at")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("charged_micros")
