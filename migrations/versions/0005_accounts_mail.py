"""accounts and mail: the outbox table, and every stored email in its normalised form

Revision ID: 0005_accounts_mail
Revises: 0004_refund_lifecycle
Create Date: 2026-11-29 23:40:00

Existing addresses are rewritten to the form shopapp.services.accounts.normalize_email stores (email-validator's
normalised form with a lower-case local part; the function is copied here so this migration never changes
when the app's code does). If two accounts normalise to the same address (e.g. "zoë@" typed once as one
character and once as "e" plus a combining accent), the migration STOPS with the list of clashing accounts
and changes nothing: merging two accounts (their orders, their passwords) is a decision for a person, not a
migration. Resolve each clash (e.g. change one account's email to an address of its owner) and run it again.
"""
import unicodedata

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

# revision identifiers, used by Alembic.
revision = '0005_accounts_mail'
down_revision = '0004_refund_lifecycle'
branch_labels = None
depends_on = None


def _normalize(email):
    text = unicodedata.normalize("NFC", email.strip())
    try:
        normalized = validate_email(
            text, check_deliverability=False, globally_deliverable=False, test_environment=True
        ).normalized
    except EmailNotValidError:
        return text.lower()
    local, _, domain = normalized.rpartition("@")
    return f"{local.lower()}@{domain}"


def _normalize_existing_emails():
    bind = op.get_bind()
    users = bind.execute(sa.text("SELECT id, email FROM users ORDER BY id")).all()
    groups = {}
    for user_id, email in users:
        groups.setdefault(_normalize(email), []).append((user_id, email))
    clashes = {key: rows for key, rows in groups.items() if len(rows) > 1}
    if clashes:
        lines = [
            f"  {key}: " + ", ".join(f"user {user_id} ({ascii(email)})" for user_id, email in rows)
            for key, rows in sorted(clashes.items())
        ]
        raise RuntimeError(
            "0005_accounts_mail: these accounts have addresses that are the same once normalised; nothing was "
            "changed. Give each clashing account a distinct address (or merge them by hand), then run the "
            "upgrade again:\n" + "\n".join(lines)
        )
    for key, rows in groups.items():
        user_id, email = rows[0]
        if email != key:
            bind.execute(sa.text("UPDATE users SET email = :email WHERE id = :id"), {"email": key, "id": user_id})


def upgrade():
    _normalize_existing_emails()
    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=190), nullable=False),
    sa.Column('kind', sa.Enum('welcome', 'order_receipt', 'refund_notice', 'password_reset', 'password_changed', name='mail_kind', native_enum=False, length=32), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('context', sa.Text(), server_default='{}', nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', name='mail_status', native_enum=False, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_outbox_messages_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_outbox_messages_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_messages_dedupe_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_outbox_messages_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_user_id'), ['user_id'], unique=False)


def downgrade():
    # Normalised addresses stay as they are: the old code compared lower-cased text, which they already are.
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_messages_user_id'))
        batch_op.drop_index('ix_outbox_messages_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_order_id'))

    op.drop_table('outbox_messages')
