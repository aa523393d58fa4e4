"""Notifier plugins: send a message about an alert and say what happened. Each one is a class registered under the
entry point group `zhujian.notifiers` (name = channel) and built from the settings; `load_notifiers` finds the
configured ones. Two ship with zhujian: SMTP e-mail (`email`) and an HTTP webhook for a center's SMS gateway
(`sms`).

Privacy: the message is the center's template (`ZHUJIAN_ALERT_MESSAGE`) filled with the fields it names, from a
fixed set (visit id, level, center name); no result, name or diagnosis goes out unless the center writes it into the
template. The recipient (an address, a phone number) is given by the user who sends, or the center's default.
"""

from __future__ import annotations

import dataclasses
import json
import smtplib
import string
import urllib.error
import urllib.request
from email.message import EmailMessage
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from zhujian.settings import Settings

ENTRY_POINT_GROUP = "zhujian.notifiers"
# The only fields a message template may use: nothing identifies the examinee beyond the center's own visit id.
MESSAGE_FIELDS = frozenset({"visit_id", "level", "center"})
TIMEOUT_SECONDS = 10.0


class NotifierError(ValueError):
    """A notifier is misconfigured (not a delivery failure: those are results)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """What a notifier did: whether the gateway accepted the message, and its answer (kept in the attempt row)."""

    success: bool
    detail: str


@runtime_checkable
class Notifier(Protocol):
    channel: str

    def send(self, recipient: str, subject: str, text: str) -> Delivery: ...


def render_message(template: str, *, visit_id: str, level: str, center: str) -> str:
    """Fill the center's template. A field outside MESSAGE_FIELDS is an error, not an empty string."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    unknown = names - MESSAGE_FIELDS
    if unknown:
        raise NotifierError(
            f"ZHUJIAN_ALERT_MESSAGE uses unknown field(s) {sorted(unknown)}; allowed: {sorted(MESSAGE_FIELDS)}"
        )
    return template.format(visit_id=visit_id, level=level, center=center)


class SmtpNotifier:
    """E-mail through the center's SMTP server (plain SMTP, STARTTLS when the server offers it)."""

    channel = "email"

    def __init__(self, host: str, port: int, sender: str, *, username: str | None = None, password: str | None = None):
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpNotifier | None:
        if not settings.smtp_host:
            return None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            username=settings.smtp_username,
            password=password,
        )

    def send(self, recipient: str, subject: str, text: str) -> Delivery:
        if "@" not in recipient:
            return Delivery(False, f"收件地址不正确：{recipient!r}")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls()
                    smtp.ehlo()
                if self.username and self.password:
                    smtp.login(self.username, self.password)
                refused = smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            return Delivery(False, f"SMTP 发送失败：{type(exc).__name__}: {exc}")
        if refused:
            return Delivery(False, f"SMTP 拒收：{refused}")
        return Delivery(True, f"SMTP {self.host}:{self.port} 已接收")


class WebhookNotifier:
    """An SMS gateway reached by an HTTP POST of JSON `{"to": ..., "text": ...}`; any 2xx answer is success."""

    channel = "sms"

    def __init__(self, url: str, *, token: str | None = None):
        if not url.startswith(("http://", "https://")):
            raise NotifierError(f"ZHUJIAN_SMS_WEBHOOK_URL must be an http(s) URL, not {url!r}")
        self.url = url
        self.token = token

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookNotifier | None:
        if not settings.sms_webhook_url:
            return None
        token = settings.sms_webhook_token.get_secret_value() if settings.sms_webhook_token else None
        return cls(settings.sms_webhook_url, token=token)

    def send(self, recipient: str, subject: str, text: str) -> Delivery:
        body = json.dumps({"to": recipient, "text": text}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                answer = response.read(500).decode("utf-8", "replace")
                return Delivery(True, f"HTTP {response.status}: {answer}")
        except urllib.error.HTTPError as exc:
            return Delivery(False, f"HTTP {exc.code}: {exc.read(500).decode('utf-8', 'replace')}")
        except (OSError, urllib.error.URLError) as exc:
            return Delivery(False, f"短信网关不可达：{type(exc).__name__}: {exc}")


def load_notifiers(settings: Settings) -> dict[str, Notifier]:
    """The configured notifiers by channel: every `zhujian.notifiers` entry point whose class builds one from the
    settings (`from_settings` returns None when its settings are missing). Built-ins are found without an installed
    distribution too (a source checkout)."""
    classes: dict[str, Any] = {"email": SmtpNotifier, "sms": WebhookNotifier}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        classes[point.name] = point.load()
    found: dict[str, Notifier] = {}
    for channel, cls in classes.items():
        notifier = cls.from_settings(settings)
        if notifier is not None:
            found[channel] = notifier
    return found
