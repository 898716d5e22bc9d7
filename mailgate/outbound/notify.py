"""Which mails an outcome causes: every mail the flows send, by one name, wherever it is written.

Each mail lives with its kind: customer_mail (acknowledgement, status changes, reminders),
answers (an agent's answer to the customers), agent_replies (what became of an agent's mail),
staff_mail (notifications, reminders, the digest), sender_answers (mail that files on no
ticket). Below them recipients picks who gets a ticket's mail, template_views shapes what
the templates show, and sending is the one path every mail takes to the outbox."""

from mailgate.outbound.agent_replies import CommandReport, send_command_errors, send_not_sent
from mailgate.outbound.answers import Change, send_staff_answer
from mailgate.outbound.customer_mail import (
    STATUS_TEMPLATES,
    acknowledge,
    send_confirmation_reminder,
    send_status_change,
)
from mailgate.outbound.sender_answers import send_rejected_sender, send_ticket_list, send_too_large
from mailgate.outbound.staff_mail import (
    StaffEvent,
    notify_staff,
    send_digest,
    send_hold_reminder,
    send_sla_breach,
)

__all__ = [
    "STATUS_TEMPLATES",
    "Change",
    "CommandReport",
    "StaffEvent",
    "acknowledge",
    "notify_staff",
    "send_command_errors",
    "send_confirmation_reminder",
    "send_digest",
    "send_hold_reminder",
    "send_not_sent",
    "send_rejected_sender",
    "send_sla_breach",
    "send_staff_answer",
    "send_status_change",
    "send_ticket_list",
    "send_too_large",
]
