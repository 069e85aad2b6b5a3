"""owners' catalogues; campaigns on a schedule and on audiences; owner ids on decisions; event
arrival times; alert delivery to a webhook

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("body_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("owner_id", "name"),
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("next_due_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("audience_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("customer_ref", sa.String(200), nullable=True))
    op.create_index("ix_decisions_customer_ref", "decisions", ["campaign_id", "customer_ref"])
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("received_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("customer_ref", sa.String(200), nullable=True))
    op.create_table(
        "delivered_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("batch_key", sa.String(100), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("campaign_id", "batch_key"),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivery_attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("delivery_attempts")
        batch.drop_column("delivered_at")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("customer_ref")
        batch.drop_column("received_at")
    op.drop_index("ix_decisions_customer_ref", "decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("customer_ref")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("audience_id")
        batch.drop_column("next_due_at")
    op.drop_table("delivered_batches")
    op.drop_table("catalogs")
