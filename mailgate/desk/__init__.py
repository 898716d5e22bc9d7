"""The desk: customers and their organisations, agents, routing a mail to a decision,
tickets and their status machine, time booked, SLA, imports. The one writer of tickets,
articles and events.

It may import `reading`, `store`, `config` and `moments`. It never sends mail: it returns
what happened (an `Applied`, the events) and the flow above asks `outbound` for the mails."""
