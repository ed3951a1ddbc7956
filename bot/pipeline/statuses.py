"""The provider's numeric status codes: names, groups, rank order and the legacy words.

Status only moves forward by rank: 101 < 103 < 102 < 110 < 114 < 111 < 112 < 113 < 503 < final.
A final status is never overwritten, except 599 Unknown, which a real final report may replace.
"""

from __future__ import annotations

from enum import IntEnum
from functools import cache


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


@cache
def predecessors(new: int) -> tuple[int, ...]:
    """Every status a message may be in for `new` to replace it (used as a conditional UPDATE guard)."""
    return tuple(code for code in Status if can_move(code, new))


def legacy(code: int) -> str:
    """The Old Web SMS word: Delivered, Sent, Wrong, Expired or Canceled."""
    if code == Status.DELIVERED_TO_HANDSET:
        return "Delivered"
    if code == Status.EXPIRED:
        return "Expired"
    if code == Status.CANCELED:
        return "Canceled"
    return "Sent" if code < 200 else "Wrong"


# What each status means and what to do next, one line each (the console timeline, the API's events).
EXPLANATIONS: dict[int, str] = {
    Status.ACCEPTED: "We received the message and are checking it. Nothing to do.",
    Status.QUEUED: "Checked and paid for; waiting for a worker to send it (or for its send time or quiet hours).",
    Status.FUNDED: "The price was debited from the balance or added to the invoice. Nothing to do.",
    Status.REFUNDED: "The message never left us, so its price was given back. Nothing to do.",
    Status.SENDING: "A worker is handing it to the carrier; a failed attempt is retried. Nothing to do yet.",
    Status.DELIVERED_TO_GATEWAY: "The carrier's gateway took it; a delivery report should follow within minutes.",
    Status.DELIVERED_TO_CARRIER: "The mobile operator has it and is delivering it. Nothing to do.",
    Status.DELIVERED_TO_GSM: "The mobile network is delivering it to the phone. Nothing to do.",
    Status.QUEUED_AT_GATEWAY: "The carrier queued it for sending; a delivery report should follow.",
    Status.DELIVERED_TO_HANDSET: "The phone confirmed delivery. Done.",
    Status.EXPIRED: "The phone was not reachable before the validity period ended. Send again later if it matters.",
    Status.CANCELED: "Canceled before sending, and refunded. Nothing to do.",
    Status.INSUFFICIENT_FUNDS: "The balance did not cover the price. Top up the account and send again.",
    Status.SENDER_REJECTED: "The sender is not allowed for this destination (e.g. US/Canada needs a campaign and a "
    "numeric sender). Change the sender or ask the operator.",
    Status.CONTENT_REJECTED: "The text has a word the account bans. Rephrase it and send again.",
    Status.RECIPIENT_REJECTED: "The phone is on the block list (it texted STOP). Only the phone can lift it by "
    "texting START.",
    Status.GENERIC_REJECTED: "The carrier or our routing refused it (e.g. no number to send from). Contact support "
    "with the message id.",
    Status.INVALID_SENDER: "The sender is not 1-11 letters/digits or a number of yours. Fix the sender.",
    Status.INVALID_CONTENT: "The text is empty, has control characters or is too long. Fix the text.",
    Status.INVALID_RECIPIENT: "The phone number is not valid. Check the number and its country code.",
    Status.MISSING_SMS_SUBSCRIPTION: "The number cannot take SMS (a landline, toll-free or premium number). "
    "Use a mobile number.",
    Status.INTERNAL_ERROR: "Something failed on our side before hand-off; the price was refunded. Send again or "
    "contact support.",
    Status.UNKNOWN_SUBSCRIBER: "The mobile network does not know this number. Remove it from your list.",
    Status.SUBSCRIBER_UNREACHABLE: "The phone could not be reached (no coverage or roaming block). Try again later.",
    Status.SUBSCRIBER_OFFLINE: "The phone is off or out of coverage; the network keeps retrying until the message "
    "expires. Wait.",
    Status.DELIVERY_TO_GATEWAY_FAILED: "Every attempt to hand it to the carrier failed (see the attempt details); "
    "refunded. Send again later.",
    Status.DELIVERY_TO_CARRIER_FAILED: "The carrier could not pass it to the mobile operator. Send again later or "
    "contact support.",
    Status.DELIVERY_TO_GSM_FAILED: "The mobile network could not deliver it. Try again later.",
    Status.DELIVERY_TO_HANDSET_FAILED: "The phone refused it (memory full or blocked). Ask the person to check "
    "their phone.",
    Status.GENERIC_DELIVERY_FAILURE: "The carrier reported a failure without a reason. Try again later.",
    Status.GATEWAY_ERROR: "The carrier's gateway had an error. Try again later or contact support.",
    Status.UNKNOWN: "Handed off, but no delivery report came within the validity period. It may or may not have "
    "arrived.",
}


def explain(code: int) -> str:
    """One line: what the status means and what to do next."""
    return EXPLANATIONS[Status(code)]
