"""The provider's numeric status codes: names, groups, rank order and the legacy words.

Status only moves forward by rank: 101 < 103 < 102 < 110 < 114 < 111 < 112 < 113 < 503 < final.
A final status is never overwritten, except 599 Unknown, which a real final report may replace.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    ACCEPTED = 101
    QUEUED = 102
    FUNDED = 103
    REFUNDED = 104
    SENDING = 110
    DELIVERED_TO_GATEWAY = 111
    DELIVERED_TO_CARRIER = 112
    DELIVERED_TO_GSM = 113
    QUEUED_AT_GATEWAY = 114
    DELIVERED_TO_HANDSET = 201
    EXPIRED = 202
    CANCELED = 203
    INSUFFICIENT_FUNDS = 402
    SENDER_REJECTED = 403
    CONTENT_REJECTED = 404
    RECIPIENT_REJECTED = 405
    GENERIC_REJECTED = 406
    INVALID_SENDER = 407
    INVALID_CONTENT = 408
    INVALID_RECIPIENT = 409
    MISSING_SMS_SUBSCRIPTION = 410
    INTERNAL_ERROR = 500
    UNKNOWN_SUBSCRIBER = 501
    SUBSCRIBER_UNREACHABLE = 502
    SUBSCRIBER_OFFLINE = 503
    DELIVERY_TO_GATEWAY_FAILED = 511
    DELIVERY_TO_CARRIER_FAILED = 512
    DELIVERY_TO_GSM_FAILED = 513
    DELIVERY_TO_HANDSET_FAILED = 514
    GENERIC_DELIVERY_FAILURE = 515
    GATEWAY_ERROR = 516
    UNKNOWN = 599

    @property
    def label(self) -> str:
        """The provider's CamelCase name, e.g. DeliveredToHandset."""
        return "".join(part.capitalize() for part in self.name.split("_")).replace("Gsm", "GSM")


GROUPS = {1: "Info", 2: "Success", 4: "Rejection", 5: "Error"}
_PROGRESS = [101, 103, 102, 110, 114, 111, 112, 113, 503]
_FINAL_RANK = len(_PROGRESS)
# Codes that are not states of a message but events in its history (104 Refunded).
HISTORY_ONLY = frozenset({Status.REFUNDED})


def name(code: int) -> str:
    return Status(code).label


def group(code: int) -> str:
    return GROUPS[code // 100]


def is_final(code: int) -> bool:
    return code >= 200 and code != Status.SUBSCRIBER_OFFLINE


def rank(code: int) -> int:
    return _FINAL_RANK if is_final(code) else _PROGRESS.index(code)


def can_move(current: int, new: int) -> bool:
    """Whether a message at `current` may take status `new` (the rank rule; 599 yields to a real final)."""
    if new in HISTORY_ONLY or current in HISTORY_ONLY:
        return False
    if current == Status.UNKNOWN:
        return is_final(new) and new != Status.UNKNOWN
    return not is_final(current) and rank(new) > rank(current)


def predecessors(new: int) -> list[int]:
    """Every status a message may be in for `new` to replace it (used as a conditional UPDATE guard)."""
    return [code for code in Status if can_move(code, new)]


def legacy(code: int) -> str:
    """The Old Web SMS word: Delivered, Sent, Wrong, Expired or Canceled."""
    if code == Status.DELIVERED_TO_HANDSET:
        return "Delivered"
    if code == Status.EXPIRED:
        return "Expired"
    if code == Status.CANCELED:
        return "Canceled"
    return "Sent" if code < 200 else "Wrong"
