"""Mail going out: which mails an outcome causes (notify and its modules), the templates
(render), composing, the outbox, the transports, the loop limits, failing addresses, and
the context the stages share.

It may import `desk`, `reading`, `store`, `config` and `moments`."""
