"""End to end: what a stored message does (pipeline, apply), a staff reply, a due
reminder, the digest, a mail too large to take; each calls the desk, then outbound.

It may import `outbound`, `desk`, `reading`, `store`, `config` and `moments`; never
`intake` (its sibling) or anything above."""
