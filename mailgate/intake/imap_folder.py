"""One IMAP folder read into the spool: which messages are new, fetched in bounded batches,
stored, then moved to the processed folder (or set aside when too large); how far the folder
has been read is kept with the stored messages."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from imapclient import FLAGGED, SEEN, IMAPClient
from sqlmodel import Session

from mailgate.config import ImapConfig
from mailgate.intake.reading import HEAD_BYTES  # only so much of a too large one's header
from mailgate.outbound.context import Context
from mailgate.store import spool
from mailgate.store.models import ImapState

log = logging.getLogger("mailgate.intake.imap")

# A FETCH takes at most this many messages and, by their RFC822.SIZE, this many bytes (one
# message at least): what a batch holds in memory, however full or large the mailbox.
BATCH_SIZE = 50
BATCH_BYTES = 32 << 20
SIZES_ASKED = 1000  # UIDs whose sizes one FETCH asks for: a command line of about 10 KB
# A server silent this long outside IDLE is gone; connecting gets less, as stop waits for it.


class Trouble:
    """A failure that may repeat every round: logged when it starts and when it ends."""

    def __init__(self, event: str, mailbox: str) -> None:
        self.event, self.mailbox = event, mailbox
        self.active = False

    def failed(self, exc: BaseException) -> None:
        line = "event=%s_failing mailbox=%s error_type=%s error=%r"
        args = (self.event, self.mailbox, type(exc).__name__, str(exc))
        log.log(logging.DEBUG if self.active else logging.WARNING, line, *args)
        self.active = True

    def recovered(self) -> None:
        if self.active:
            log.info("event=%s_recovered mailbox=%s", self.event, self.mailbox)
        self.active = False


class MailboxFolder:
    """The folder of one [[imap]] mailbox, read over whichever connection is current."""

    def __init__(
        self,
        ctx: Context,
        mailbox: ImapConfig,
        on_stored: Callable[[int], None],
        on_lag: Callable[[str, float], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.mailbox = mailbox
        self.on_stored = on_stored
        self.on_lag = on_lag
        self.source = f"imap:{mailbox.name}"
        self.aside_trouble = Trouble("imap_set_aside", mailbox.name)
        # The folders moved to that exist, and the connection that saw them.
        self.folders_seen: set[str] = set()
        self.folders_seen_on: IMAPClient | None = None

    def drain(self, client: IMAPClient) -> int:
        """Store every message not stored yet, moving each batch once it is committed."""
        folder = client.select_folder(self.mailbox.folder)
        uidvalidity = int(folder[b"UIDVALIDITY"])
        last_uid = self._last_uid(uidvalidity)
        # UNDELETED: a message someone deleted is not wanted, and one of ours whose EXPUNGE
        # was cut off is already stored and copied.
        present = sorted(client.search("UNDELETED"))
        # Sizes before any body: a message over the limit is never downloaded whole. A UID
        # without a size was expunged meanwhile.
        sizes = _sizes(client, present)
        limit = self.ctx.config.smtp.max_message_size
        # Stored before, but the move did not happen (connection lost in between).
        left = [uid for uid in present if uid <= last_uid and uid in sizes]
        self._move(client, [uid for uid in left if sizes[uid] <= limit])
        self._set_aside(client, [uid for uid in left if sizes[uid] > limit])
        stored = 0
        new = [uid for uid in present if uid > last_uid and uid in sizes]
        self._report_lag(client, new)
        for uids in batches(new, sizes, limit):
            if sizes[uids[0]] > limit:
                stored += self._withhold(client, uidvalidity, uids[0], sizes[uids[0]])
            else:
                stored += self._batch(client, uidvalidity, uids)
        return stored

    def _report_lag(self, client: IMAPClient, waiting: list[int]) -> None:
        """How long the oldest waiting message has been in the folder (0 when none waits)."""
        if self.on_lag is None:
            return
        age = 0.0
        if waiting:
            arrived = client.fetch(waiting[:1], ["INTERNALDATE"])[waiting[0]][b"INTERNALDATE"]
            # imapclient gives INTERNALDATE as naive local time.
            age = max((datetime.now() - arrived).total_seconds(), 0.0)
        self.on_lag(self.mailbox.name, age)

    def _batch(self, client: IMAPClient, uidvalidity: int, uids: list[int]) -> int:
        """Fetch a batch, store it in one transaction, then move it. A store failure leaves
        the whole batch in the folder (raised as StoreUnavailable)."""
        # PEEK: a message we fail to store must look untouched to anyone reading the folder.
        fetched = client.fetch(uids, ["BODY.PEEK[]"])
        # A UID without a body was expunged by someone else in the meantime.
        found = [
            (uid, fetched[uid][b"BODY[]"]) for uid in uids if b"BODY[]" in fetched.get(uid, {})
        ]
        if not found:
            return 0
        now = self.ctx.clock()
        incoming = [spool.Incoming(raw, self.source, now) for _, raw in found]
        # How far the folder is read is committed with the messages: never one without the other.
        done = [uid for uid, _ in found]
        read_up_to = functools.partial(self._save_state, uidvalidity=uidvalidity, last_uid=done[-1])
        results = spool.accept_many(self.ctx.store, incoming, then=read_up_to)
        stored = 0
        for (uid, _), accepted in zip(found, results, strict=True):
            log.info(
                "event=imap_stored mailbox=%s uid=%s intake_id=%s duplicate=%s",
                self.mailbox.name,
                uid,
                accepted.intake_id,
                accepted.duplicate,
            )
            if not accepted.duplicate:
                self.on_stored(accepted.intake_id)
                stored += 1
        self._move(client, done)
        return stored

    def _withhold(self, client: IMAPClient, uidvalidity: int, uid: int, size: int) -> int:
        """A message over the size limit: only its header is stored, for the pipeline to tell
        its sender (once: fetched again, the same header is the same stored message), and
        the message is set aside unread. 1 when its header was newly stored."""
        fetched = client.fetch([uid], [f"BODY.PEEK[HEADER]<0.{HEAD_BYTES}>"]).get(uid, {})
        head = fetched.get(b"BODY[HEADER]<0>")
        if head is None:
            return 0  # expunged by someone else in the meantime
        incoming = spool.Incoming(head, self.source, self.ctx.clock(), whole_size=size)
        read_up_to = functools.partial(self._save_state, uidvalidity=uidvalidity, last_uid=uid)
        (accepted,) = spool.accept_many(self.ctx.store, [incoming], then=read_up_to)
        log.warning(
            "event=imap_too_large mailbox=%s uid=%s size=%s limit=%s intake_id=%s duplicate=%s",
            self.mailbox.name,
            uid,
            size,
            self.ctx.config.smtp.max_message_size,
            accepted.intake_id,
            accepted.duplicate,
        )
        if not accepted.duplicate:
            self.on_stored(accepted.intake_id)
        self._set_aside(client, [uid])
        return 0 if accepted.duplicate else 1

    def _move(self, client: IMAPClient, uids: list[int]) -> None:
        """Stored messages, to processed_folder."""
        if uids:
            # Read with PEEK until now; whoever browses the processed folder sees them handled.
            client.add_flags(uids, [SEEN])
            self._move_to(client, uids, self.mailbox.processed_folder)

    def _set_aside(self, client: IMAPClient, uids: list[int]) -> None:
        """Messages too large to take, to oversize_folder, left unread: nobody handled them.
        Where the server refuses that folder, they stay, flagged for a person to see; being
        stored, they hold up none of the mail after them."""
        if not uids:
            return
        try:
            self._move_to(client, uids, self.mailbox.oversize_folder)
        except IMAPClient.AbortError:
            raise  # the connection is gone: start over
        except IMAPClient.Error as exc:  # the server said NO: the folder, a quota, a right
            self.aside_trouble.failed(exc)
            client.add_flags(uids, [FLAGGED])
            return
        self.aside_trouble.recovered()

    def _move_to(self, client: IMAPClient, uids: list[int], target: str) -> None:
        # Looked up once a connection (a round trip per batch otherwise); should someone
        # delete it meanwhile, the move fails and the new connection creates it again.
        if self.folders_seen_on is not client:
            self.folders_seen, self.folders_seen_on = set(), client
        if target not in self.folders_seen:
            if not client.folder_exists(target):
                client.create_folder(target)
            self.folders_seen.add(target)
        if client.has_capability("MOVE"):
            client.move(uids, target)
        else:
            client.copy(uids, target)
            client.delete_messages(uids)
            # Without UIDPLUS, EXPUNGE also removes what others marked \Deleted, which they
            # wanted gone anyway.
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:
                client.expunge()
        log.info(
            "event=imap_moved mailbox=%s folder=%s count=%s", self.mailbox.name, target, len(uids)
        )

    # State -----------------------------------------------------------------------------------

    def _last_uid(self, uidvalidity: int) -> int:
        """The highest UID already stored; 0 when the folder's UIDs were renumbered."""
        with self.ctx.store.session() as session:
            state = session.get(ImapState, self.mailbox.name)
        if state is None:
            return 0
        if state.uidvalidity != uidvalidity:
            # Old UIDs mean nothing now: read everything again. spool.accept and the
            # pipeline's duplicate check keep what was stored before from becoming tickets twice.
            log.warning(
                "event=imap_uidvalidity_changed mailbox=%s old=%s new=%s",
                self.mailbox.name,
                state.uidvalidity,
                uidvalidity,
            )
            with self.ctx.store.session() as session:
                self._save_state(session, uidvalidity, 0)
            return 0
        return state.last_uid

    def _save_state(self, session: Session, uidvalidity: int, last_uid: int) -> None:
        state = session.get(ImapState, self.mailbox.name)
        if state is None:
            state = ImapState(
                mailbox=self.mailbox.name, uidvalidity=0, last_uid=0, updated_at=self.ctx.clock()
            )
        state.uidvalidity, state.last_uid = uidvalidity, last_uid
        state.updated_at = self.ctx.clock()
        session.add(state)


def _sizes(client: IMAPClient, uids: list[int]) -> dict[int, int]:
    """Each message's RFC822.SIZE, asked SIZES_ASKED at a time: a full folder's UIDs in one
    command would make a line longer than servers take."""
    sizes: dict[int, int] = {}
    for start in range(0, len(uids), SIZES_ASKED):
        fetched = client.fetch(uids[start : start + SIZES_ASKED], ["RFC822.SIZE"])
        sizes.update((u, int(d[b"RFC822.SIZE"])) for u, d in fetched.items() if b"RFC822.SIZE" in d)
    return sizes


def batches(
    uids: list[int],
    sizes: Mapping[int, int],
    limit: int,
    count: int = BATCH_SIZE,
    budget: int = BATCH_BYTES,
) -> Iterator[list[int]]:
    """The messages in UID order, in fetch batches of at most `count` messages and `budget`
    bytes (one message at least); a message over `limit` in a batch of its own."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes[uid]
        alone = size > limit
        if batch and (alone or len(batch) == count or total + size > budget):
            yield batch
            batch, total = [], 0
        if alone:
            yield [uid]
        else:
            batch.append(uid)
            total += size
    if batch:
        yield batch
