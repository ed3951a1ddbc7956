"""E-mail through SMTP_URL, always from a job (SMTP may be slow or down; the job is retried).

SMTP_URL: `smtp://host:port` (plain, STARTTLS when the server offers it), `smtps://host:port` (TLS),
with optional `user:password@` before the host.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from flask import current_app

from bot.jobs import with_connection
from models import InboundMessage


class MailNotConfigured(RuntimeError):
    pass


def send_mail(to: list[str], subject: str, body: str) -> None:
    """Send one plain-text e-mail; raises (so RQ retries) when the server refuses or cannot be reached."""
    url = current_app.config["SMTP_URL"]
    if not url:
        raise MailNotConfigured("SMTP_URL is not set: no e-mail can be sent")
    parts = urlsplit(url)
    message = EmailMessage()
    message["From"] = current_app.config["EMAIL_FROM"]
    message["To"] = ", ".join(to)
    message["Subject"] = subject
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


@with_connection
def email_inbound_copy(inbound_id: int) -> None:
    """E-mail a copy of an inbound SMS to the number's `email_copy` addresses (an RQ job, retried)."""
    message = InboundMessage.get_by_id(inbound_id)
    number = message.number
    when = message.received_at.isoformat(timespec="seconds") + "Z"
    body = f"From: {message.sender}\nTo: {number.number}\nReceived: {when}\n\n{message.body}\n"
    send_mail(list(number.email_copy), f"SMS from {message.sender} to {number.number}", body)
