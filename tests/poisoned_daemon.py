"""`mailgate` whose process is killed, as the kernel's OOM killer would kill it, whenever it
parses a mail with the subject "poison"; and that never finishes parsing one with the
subject "endless", as a parser caught in a loop would not."""

from __future__ import annotations

import os
import signal
import threading

from mailgate.cli import main
from mailgate.flows import pipeline
from mailgate.reading.parse import ParsedMail

POISON = b"Subject: poison"
ENDLESS = b"Subject: endless"


def _parse_or_die(raw: bytes) -> ParsedMail:
    if POISON in raw:
        os.kill(os.getpid(), signal.SIGKILL)
    if ENDLESS in raw:
        threading.Event().wait()
    return _parse(raw)


_parse = pipeline.parse
pipeline.parse = _parse_or_die  # the fault injected: no real mail kills Python on purpose
main()
