"""delivery broadcast key only on broadcasts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:50:00.000000

The unique (enrollment_id, broadcast_id) key becomes a partial unique index over the rows that have a
broadcast: a lesson delivery (broadcast_id NULL, never in conflict) no longer writes an entry to it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

HAS_BROADCAST = sa.text('broadcast_id IS NOT NULL')


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint('uq_delivery_enrollment_broadcast', type_='unique')
        batch_op.create_index(
            'uq_delivery_enrollment_broadcast',
            ['enrollment_id', 'broadcast_id'],
            unique=True,
            sqlite_where=HAS_BROADCAST,
            postgresql_where=HAS_BROADCAST,
        )


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('uq_delivery_enrollment_broadcast')
        batch_op.create_unique_constraint('uq_delivery_enrollment_broadcast', ['enrollment_id', 'broadcast_id'])

