"""The store: tables (models), the database engine and its sessions, migrations, blobs on
disk, the spool of stored messages and their states, cluster locks, the installation's key.

The floor every other package stands on. It may import `config` and `moments`, nothing else
of mailgate's: a lookup that only reads a table lives here with the table, not in the
module that writes it."""
