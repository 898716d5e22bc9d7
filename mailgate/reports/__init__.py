"""Read-only views for people: ticket lists and details, stats, the time report,
exports, terminal tables, a customer's mail as received.

It may import the packages below `service`; never `service` (its sibling). Nothing here
writes a ticket."""
