"""The soak's relay: takes mailgate's outgoing mail and writes one JSON line a delivery to a
file (arrival time, envelope recipients, Subject, Message-ID, In-Reply-To), which the soak
reads as it goes. A process of its own, so that its clock is not held up by the load.

Usage: soak_sink.py PORT FILE; it stops when its stdin closes."""

from __future__ import annotations

import json
import sys
import time
from email.parser import BytesHeaderParser
from email.policy import default
from typing import IO, Any

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.parser = BytesHeaderParser(policy=default)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        arrived = time.time()
        head = self.parser.parsebytes(envelope.original_content)
        entry = {
            "t": arrived,
            "rcpt": [address.lower() for address in envelope.rcpt_tos],
            "subject": str(head.get("Subject", "")),
            "message_id": str(head.get("Message-ID", "")).strip(),
            "in_reply_to": str(head.get("In-Reply-To", "")).strip(),
        }
        # Whole lines only, at once: the soak reads the file while it grows.
        self.out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.out.flush()
        return "250 OK"


def main(port: int, path: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        controller = Controller(Recorder(out), hostname="127.0.0.1", port=port)
        controller.start()
        sys.stdin.read()
        controller.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
