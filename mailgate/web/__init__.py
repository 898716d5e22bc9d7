"""The web desk: staff sign in by a mailed link and read their queues and tickets in a
browser. Served by the daemon (`[web] listen`), from the same store; the command line plugs
it in (mailgate.service.hosted), so nothing below imports it."""
