"""The tests' Dovecot starts on other ports when one it was given is taken meanwhile (another
test's connection to 127.0.0.2 may have it as its own end)."""

from __future__ import annotations

import socket

from tests.dovecot import BASIC_HOST, Dovecot


def test_a_port_taken_before_dovecot_binds_it_is_replaced() -> None:
    server = Dovecot()
    with socket.socket() as taken:
        taken.bind((BASIC_HOST, 0))
        taken.listen()
        server.port = taken.getsockname()[1]
        try:
            server.start()
            assert server.port != taken.getsockname()[1]
            with socket.create_connection((BASIC_HOST, server.port), timeout=5) as imap:
                assert imap.recv(100).startswith(b"* OK")
        finally:
            server.stop()
