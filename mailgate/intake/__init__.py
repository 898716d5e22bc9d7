"""Intake adapters: SMTP and LMTP (aiosmtpd), IMAP (imapclient), reading a message
from a pipe. They land the raw bytes in the spool, commit, and only then say yes; none of
them knows that tickets exist.

It may import `store`, `config`, `moments` and the shared context; never `flows` (its
sibling), `desk` or anything above."""
