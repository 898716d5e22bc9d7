"""Read-only queries that turn stored rows into the JSON-ready shapes of the CLI contract.

The command line reads them all by this one name; each lives with its job: filters (the
options read into a TicketFilter), selection (the SQL a filter runs), listing (`tickets
list` rows and CSV), detail (`tickets show`), mail_rows (articles, intake and outbox)."""

from mailgate.reports.detail import find_ticket, ticket_detail
from mailgate.reports.filters import FilterError, TicketFilter, checked, make_filter
from mailgate.reports.listing import TICKET_CSV_FIELDS, flat_row, ticket_rows, write_csv
from mailgate.reports.mail_rows import intake_dict, intake_rows, outbox_rows

__all__ = [
    "TICKET_CSV_FIELDS",
    "FilterError",
    "TicketFilter",
    "checked",
    "find_ticket",
    "flat_row",
    "intake_dict",
    "intake_rows",
    "make_filter",
    "outbox_rows",
    "ticket_detail",
    "ticket_rows",
    "write_csv",
]
