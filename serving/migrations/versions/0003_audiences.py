"""owners' audiences: members, opt-outs per channel, saved filters

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 15:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audiences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("schema_json", sa.Text(), nullable=False),
        sa.Column("report_json", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("next_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name"),
    )
    op.create_index(op.f("ix_audiences_owner_id"), "audiences", ["owner_id"], unique=False)
    op.create_table(
        "audience_members",
        sa.Column("audience_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["audience_id"], ["audiences.id"]),
        sa.PrimaryKeyConstraint("audience_id", "customer_id"),
    )
    op.create_table(
        "audience_opt_outs",
        sa.Column("audience_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["audience_id"], ["audiences.id"]),
        sa.PrimaryKeyConstraint("audience_id", "channel", "customer_id"),
    )
    op.create_table(
        "audience_filters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("audience_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["audience_id"], ["audiences.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("audience_id", "name"),
    )
    op.create_index(
        op.f("ix_audience_filters_audience_id"), "audience_filters", ["audience_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audience_filters_audience_id"), table_name="audience_filters")
    op.drop_table("audience_filters")
    op.drop_table("audience_opt_outs")
    op.drop_table("audience_members")
    op.drop_index(op.f("ix_audiences_owner_id"), table_name="audiences")
    op.drop_table("audiences")
