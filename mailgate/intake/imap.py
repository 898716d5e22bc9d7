"""IMAP intake: fetch new mail per mailbox, store it, and only then move it out of the folder."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from imapclient import FLAGGED, SEEN, IMAPClient, SocketTimeout
from imapclient.exceptions import LoginError
from sqlmodel import Session

from mailgate.config import ConfigError, ImapConfig, read_secret
from mailgate.context import Context
from mailgate.intake import spool
from mailgate.intake.reading import HEAD_BYTES  # only so much of a too large one's header
from mailgate.locks import AdvisoryLock
from mailgate.models import ImapState
from mailgate.oauth import Tokens, signed_in
from mailgate.store import StoreUnavailable

log = logging.getLogger("mailgate.intake.imap")

# A FETCH takes at most this many messages and, by their RFC822.SIZE, this many bytes (one
# message at least): what a batch holds in memory, however full or large the mailbox.
BATCH_SIZE = 50
BATCH_BYTES = 32 << 20
SIZES_ASKED = 1000  # UIDs whose sizes one FETCH asks for: a command line of about 10 KB
# A server silent this long outside IDLE is gone; connecting gets less, as stop waits for it.
SOCKET_TIMEOUT = SocketTimeout(connect=10.0, read=60.0)
STOP_GRACE = 15.0  # run() waits this long for a blocked command before leaving the thread
# RFC 2177: a server may drop a client idle for 30 minutes; renew well before 29.
IDLE_RENEW = 25 * 60.0
IDLE_TICK = 1.0  # how often an idling mailbox looks at the stop flag
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0
STORE_RETRY = 2.0  # a locked database usually frees up within seconds
CHANGES = (b"EXISTS", b"RECENT")


class _Trouble:
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


class ImapIntake:
    """One [[imap]] mailbox: IDLE (or polling) in a thread of its own; every message is
    committed with spool.accept before it is moved to `processed_folder`.

    `on_stored(intake_id)` is called for each newly stored message from that worker thread,
    never from the event loop: hand it something thread-safe (loop.call_soon_threadsafe)."""

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
        self.on_lag = on_lag  # (mailbox name, age in seconds of the oldest waiting message)
        self.source = f"imap:{mailbox.name}"
        self.connection_trouble = _Trouble("imap_connection", mailbox.name)
        self.store_trouble = _Trouble("imap_store", mailbox.name)
        self.aside_trouble = _Trouble("imap_set_aside", mailbox.name)
        self.announced = False  # the first session is logged; later ones only when recovering
        self.backoff = BACKOFF_FIRST  # seconds before the next reconnect; doubles while failing
        self.draining = threading.Lock()
        # The folders moved to that exist, and the connection that saw them.
        self.folders_seen: set[str] = set()
        self.folders_seen_on: IMAPClient | None = None
        # With several instances on one PostgreSQL database, one of them serves the mailbox.
        self.lock = AdvisoryLock(ctx.store, f"imap-mailbox:{mailbox.name}")
        self.standing_by = False
        self.tokens = Tokens(ctx.config, mailbox.oauth) if mailbox.oauth else None
        if mailbox.folder == mailbox.processed_folder:
            # Each move would hand the message a new UID, to be read and moved again forever.
            raise ConfigError(f"imap.{mailbox.name}.processed_folder: must differ from folder")

    # Entry points ----------------------------------------------------------------------

    def poll_once(self) -> int:
        """One connect, fetch, store, move cycle; how many messages were newly stored.
        Raises what went wrong (StoreUnavailable, connection errors); what was stored by
        then is kept, and what was not stays in the folder."""
        client = self._connect()
        try:
            return self._drain(client)
        finally:
            _close(client)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the mailbox until `stop` is set; reconnects with backoff on its own.
        Returns within about a second of `stop` (at most STOP_GRACE), logged out."""
        halt, finished = threading.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def serve() -> None:
            try:
                self._serve(halt)
            finally:
                with contextlib.suppress(RuntimeError):  # the event loop is closed already
                    loop.call_soon_threadsafe(finished.set)

        # A daemon thread of its own: IDLE blocks for minutes and must not hold a shared
        # worker, and a hanging server must not keep the process from exiting.
        name = f"mailgate-imap-{self.mailbox.name}"
        threading.Thread(target=serve, name=name, daemon=True).start()
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(finished.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.set()
            for waiting in waits:
                waiting.cancel()
        try:
            await asyncio.wait_for(finished.wait(), STOP_GRACE)
        except TimeoutError:
            log.warning("event=imap_stop_timeout mailbox=%s", self.mailbox.name)

    # The mailbox loop (worker thread) --------------------------------------------------------

    def _serve(self, halt: threading.Event) -> None:
        try:
            while not halt.is_set():
                if not self._hold_lock():
                    halt.wait(self.mailbox.takeover_interval)
                    continue
                try:
                    client = self._connect()
                except Exception as exc:  # unreachable, refused login, unreadable password
                    self._back_off(exc, halt)
                    continue
                try:
                    self._session(client, halt)
                except Exception as exc:  # a lost connection, or a fault of ours: start over
                    self._back_off(exc, halt)
                finally:
                    _close(client)
        finally:
            self.lock.release()

    def _hold_lock(self) -> bool:
        """Whether this instance serves the mailbox: it holds the lock or has just taken it."""
        had_it = self.lock.held
        if self.lock.try_acquire():
            if self.standing_by:
                log.info("event=imap_taken_over mailbox=%s", self.mailbox.name)
            elif not had_it:
                log.info("event=imap_serving mailbox=%s", self.mailbox.name)
            self.standing_by = False
            return True
        if not self.standing_by:
            log.info("event=imap_standby mailbox=%s reason=polled_by_another_instance",
                     self.mailbox.name)  # fmt: skip
        self.standing_by = True
        return False

    def _back_off(self, exc: Exception, halt: threading.Event) -> None:
        self.connection_trouble.failed(exc)
        halt.wait(self.backoff)
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    def _session(self, client: IMAPClient, halt: threading.Event) -> None:
        """Drain the folder, then wait for news (IDLE or the poll interval); until halted."""
        idle = client.has_capability("IDLE")
        level = logging.DEBUG if self.announced else logging.INFO
        log.log(level, "event=imap_watching mailbox=%s idle=%s", self.mailbox.name, idle)
        self.announced = True
        while not halt.is_set():
            if not self.lock.still_held():
                return  # another instance may serve the mailbox now: ask for the lock again
            try:
                # Again until nothing is new: mail that came in while we were busy gets no
                # EXISTS of its own once IDLE starts.
                while self._drain(client):
                    pass
            except StoreUnavailable as exc:
                # The mail stays in the folder; the connection is fine, so keep it.
                self.store_trouble.failed(exc)
                halt.wait(STORE_RETRY)
                continue
            self.store_trouble.recovered()
            self.connection_trouble.recovered()
            self.backoff = BACKOFF_FIRST  # the next lost connection starts the count afresh
            if idle:
                self._idle(client, halt)
            else:
                halt.wait(self.mailbox.poll_interval)

    def _idle(self, client: IMAPClient, halt: threading.Event) -> None:
        """Wait in IDLE until the folder changes, we are halted, or IDLE is due for renewal."""
        client.idle()
        if _changed_since_select(client) or _news_with_idle_reply(client):
            client.idle_done()
            return
        # Also after poll_interval: a safety net for news that slipped between two commands.
        renew_at = time.monotonic() + min(IDLE_RENEW, self.mailbox.poll_interval)
        while not halt.is_set() and time.monotonic() < renew_at:
            started = time.monotonic()
            responses = client.idle_check(timeout=IDLE_TICK)
            if any(len(r) > 1 and r[1] in CHANGES for r in responses):
                break
            # idle_check swallows EOF and returns nothing at once: let DONE find out.
            if not responses and time.monotonic() - started < IDLE_TICK / 2:
                break
        client.idle_done()

    # One cycle ----------------------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        box = self.mailbox
        where = f"imap.{box.name}.password_file"
        password = "" if self.tokens else read_secret(box.password, box.password_file, where)
        context = self._tls_context() if box.security != "none" else None
        client = IMAPClient(
            box.host,
            box.port,
            ssl=box.security == "ssl",
            ssl_context=context,
            timeout=SOCKET_TIMEOUT,
        )
        try:
            if box.security == "starttls":
                client.starttls(context)
            if self.tokens is not None:  # XOAUTH2 as the mailbox address
                sign_in = functools.partial(client.oauth2_login, box.username)
                signed_in(self.tokens, sign_in, LoginError)
            else:
                client.login(box.username, password)
        except BaseException:
            _close(client)
            raise
        log.debug("event=imap_connected mailbox=%s host=%s", box.name, box.host)
        _quiet_imaplib(client)
        return client

    def _tls_context(self) -> ssl.SSLContext:
        box = self.mailbox
        context = ssl.create_default_context(cafile=box.tls_ca_file or None)
        if not box.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _drain(self, client: IMAPClient) -> int:
        """Store every message not stored yet, moving each batch once it is committed."""
        # poll_once (a scheduler fallback) may run beside run(): one drain at a time.
        with self.draining:
            return self._drain_locked(client)

    def _drain_locked(self, client: IMAPClient) -> int:
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


def _changed_since_select(client: IMAPClient) -> bool:
    """Whether the folder changed after the drain's SELECT. A server may announce mail that
    came in between the last search and IDLE before IDLE's "+" reply, and imaplib files that
    EXISTS away instead of handing it back: look there. SELECT flushed what imaplib held and
    left its own EXISTS, the size the drain started from: only another size (or an EXPUNGE,
    which may hide an arrival behind an unchanged size) is news. Taking that EXISTS for news
    drained the folder again and again, never waiting in IDLE."""
    held = client._imap.untagged_responses
    sizes = set(held.pop("EXISTS", []))
    return len(sizes) > 1 or bool(held.pop("EXPUNGE", None))


def _news_with_idle_reply(client: IMAPClient) -> bool:
    """Whether the server sent news along with IDLE's "+" reply, as Dovecot does for mail
    that came in just before IDLE. imaplib read those lines into its buffer with the reply,
    and idle_check, which waits for the socket, would not see them until the server next
    speaks. A look without waiting: at what is buffered, else at what has arrived."""
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


def _quiet_imaplib(client: IMAPClient) -> None:
    """imapclient turns imaplib's debugging on and sends it to a logger of its own, and
    imaplib formats each of those messages before the logger is asked: every fetched mail
    was turned into its repr, four times its size, and thrown away - most of the IMAP
    intake's memory for a large mail, and a share of its time for every one. Off unless
    that logger would show them."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def _close(client: IMAPClient) -> None:
    """Log out politely; a connection that is already gone is just closed."""
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception as exc:
            log.debug("event=imap_close_failed error=%r", str(exc))
