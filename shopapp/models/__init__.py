"""SQLAlchemy models; money is always integer cents in the order's currency."""

from shopapp.models.audit import AuditOutcome, AuditRun
from shopapp.models.dispute import (
    Dispute,
    DisputeStanding,
    DisputeStatus,
    EarlyFraudWarning,
    EvidenceState,
)
from shopapp.models.order import (
    ALLOWED_TRANSITIONS,
    DERIVED_STATUSES,
    FINAL_STATUSES,
    PAID_STATUSES,
    REFUND_IN_FLIGHT,
    REFUNDABLE_STATUSES,
    ChargePaymentMethod,
    CheckoutAttempt,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Refund,
    RefundOrigin,
    RefundStatus,
    derive_status,
)
from shopapp.models.outbox import MailKind, MailStatus, OutboxMessage
from shopapp.models.payment_event import EventOutcome, PaymentEvent
from shopapp.models.pricing import Coupon, PromotionCode, ShippingRate
from shopapp.models.product import Product, ProductChange
from shopapp.models.settings import ShopSettings
from shopapp.models.user import RecoveryCode, User
from shopapp.models.webhook_rejection import RejectionReason, WebhookRejection

__all__ = [
    "ALLOWED_TRANSITIONS",
    "DERIVED_STATUSES",
    "FINAL_STATUSES",
    "PAID_STATUSES",
    "REFUNDABLE_STATUSES",
    "REFUND_IN_FLIGHT",
    "AuditOutcome",
    "AuditRun",
    "ChargePaymentMethod",
    "CheckoutAttempt",
    "Coupon",
    "Dispute",
    "DisputeStanding",
    "DisputeStatus",
    "EarlyFraudWarning",
    "EventOutcome",
    "EvidenceState",
    "MailKind",
    "MailStatus",
    "Order",
    "OrderEvent",
    "OrderItem",
    "OrderStatus",
    "OutboxMessage",
    "PaymentEvent",
    "Product",
    "ProductChange",
    "PromotionCode",
    "RecoveryCode",
    "Refund",
    "RefundOrigin",
    "RefundStatus",
    "RejectionReason",
    "ShippingRate",
    "ShopSettings",
    "User",
    "WebhookRejection",
    "derive_status",
]
