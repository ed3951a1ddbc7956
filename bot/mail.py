"""E-mail through SMTP_URL, always from a job (SMTP may be slow or down; the job is retried).

A copy of each inbound is an outbox effect (bot/outbox.py), retried after EMAIL_RETRY_INTERVALS.

SMTP_URL: `smtp://host:port` (plain, STARTTLS when the server offers it), `smtps://host:port` (TLS),
with optional `user:password@` before the host.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from flask import current_app

from bot.outbox import Failed
from models import Effect


class MailNotConfigured(RuntimeError):
    pass


def send_mail(to: list[str], subject: str, body: str, message_id: str | None = None) -> None:
    """Send one plain-text e-mail; raises (so the job is retried) when the server refuses or cannot be reached."""
    url = current_app.config["SMTP_URL"]
    if not url:
        raise MailNotConfigured("SMTP_URL is not set: no e-mail can be sent")
    parts = urlsplit(url)
    message = EmailMessage()
    message["From"] = current_app.config["EMAIL_FROM"]
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    connection = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with connection(
        parts.hostname or "localhost", parts.port or (465 if parts.scheme == "smtps" else 25), timeout=10
    ) as smtp:
        if parts.scheme == "smtp" and smtp.has_extn("starttls"):
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)


def deliver_copy(effect: Effect) -> str:
    """The outbox handler of an "email_copy" effect: e-mail the inbound to the number's `email_copy` addresses.

    The Message-ID names the effect, so a copy sent twice (a worker killed after SMTP accepted it) is one
    message to the mail client.
    """
    message = effect.inbound
    number = message.number
    when = message.received_at.isoformat(timespec="seconds") + "Z"
    body = f"From: {message.sender}\nTo: {number.number}\nReceived: {when}\n\n{message.body}\n"
    try:
        send_mail(
            list(number.email_copy),
            f"SMS from {message.sender} to {number.number}",
            body,
            message_id=f"<effect-{effect.id}@smsbot>",
        )
    except MailNotConfigured as exc:
        raise Failed(str(exc), retryable=False) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise Failed(f"{exc.__class__.__name__}: {exc}") from None
    return "sent"
