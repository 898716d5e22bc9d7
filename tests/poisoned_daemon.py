"""`mailgate` whose process is killed, as the kernel's OOM killer would kill it, whenever it
parses a mail with the subject "poison"."""

from __future__ import annotations

import os
import signal

from mailgate import pipeline
from mailgate.cli import main
from mailgate.parse import ParsedMail

POISON = b"Subject: poison"


def _parse_or_die(raw: bytes) -> ParsedMail:
    if POISON in raw:
        os.kill(os.getpid(), signal.SIGKILL)
    return _parse(raw)


_parse = pipeline.parse
pipeline.parse = _parse_or_die  # the fault injected: no real mail kills Python on purpose
main()
