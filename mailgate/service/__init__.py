"""The running service: the composition root (app), the daemon and its loops, worker and
parse-ahead processes, scheduled jobs, metrics and health, systemd notification, logs, file
ingest.

It may import every package below it. Only the command line imports `service.app`; the
daemon and its processes make parts again through `service.parts`."""
