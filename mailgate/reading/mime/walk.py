"""Walks a parsed MIME tree: picks the body text, collects attachments and report data."""

from __future__ import annotations

import binascii
from email.message import Message
from email.parser import BytesHeaderParser

from mailgate.reading.mime.budgets import MAX_TNEF
from mailgate.reading.mime.filenames import guess_type, safe_filename
from mailgate.reading.mime.headers import b64decode_lenient
from mailgate.reading.mime.legacy import extract_uuencoded, unpack_tnef
from mailgate.reading.mime.limits import MAX_NESTING, MAX_PARTS
from mailgate.reading.mime.parts import (
    VERBATIM,
    Walked,
    append,
    children,
    content_id,
    filename,
    header_text,
    param_view,
    part_text,
    payload_bytes,
    transfer_encoding,
)
from mailgate.reading.mime.report import (
    add_delivery_status,
    add_headers_part,
    add_message_fields,
    collect_ids,
    report_type,
)

_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
# Renderings that only ever stand in for the text or HTML body.
_ALTERNATIVE_ONLY = frozenset(
    {"text/enriched", "text/richtext", "text/watch-html", "text/x-amp-html"}
)


def _is_body(part: Message, content_type: str) -> bool:
    if content_type not in ("text/plain", "text/html"):
        return False
    if part.get_content_disposition() == "attachment":
        return False
    # A named text part is a file the sender attached, even when shown inline.
    named = part.get_param("filename", header="content-disposition") is not None
    return not named and not part.get_param("name")


def _add_body(part: Message, walked: Walked, hint: str | None) -> None:
    text = part_text(part, walked, hint)
    if part.get_content_subtype() == "html":
        walked.html.append(text)
        return
    text, files = extract_uuencoded(text)
    for name, data in files:
        append(walked, name, guess_type(name), data)
    walked.plain.append(text)


def _add_tnef(data: bytes, walked: Walked) -> bool:
    if len(data) > MAX_TNEF:
        walked.add("budget:tnef")
        return False
    content = unpack_tnef(data)
    if content is None:
        walked.add("tnef-failed")
        return False
    for name, blob in content.files:
        append(walked, name, guess_type(name), blob)
    walked.tnef_text = walked.tnef_text or content.text
    walked.tnef_html = walked.tnef_html or content.html
    return True


def _add_leaf(part: Message, walked: Walked, hint: str | None, parent: str) -> None:
    content_type = part.get_content_type()
    data = payload_bytes(part, walked)
    name = filename(param_view(part, hint), hint)
    is_tnef = content_type in _TNEF_TYPES or (name or "").lower() == "winmail.dat"
    if is_tnef and _add_tnef(data, walked):
        return  # the unpacked files replace the container
    cid = content_id(part)
    disposition = part.get_content_disposition()
    # Images in multipart/related are shown in the HTML even without a disposition.
    inline = cid is not None and (
        disposition == "inline" or (disposition is None and parent == "related")
    )
    append(walked, name, content_type, data, cid=cid, inline=inline)


def _embedded(part: Message, walked: Walked) -> tuple[Message | None, bytes]:
    inner = next(iter(children(part)), None)
    if inner is None:
        data = payload_bytes(part, walked)
        return (BytesHeaderParser().parsebytes(data) if data else None), data
    try:
        data = inner.as_bytes(policy=VERBATIM)
    except Exception:  # the generator can trip over what the parser accepted
        walked.add("embedded-message-unreadable")
        return inner, b""
    cte = transfer_encoding(part)
    if cte in ("base64", "quoted-printable"):
        # The stdlib parses a message/* payload as a message even when transfer-encoded.
        data = b64decode_lenient(data)[0] if cte == "base64" else binascii.a2b_qp(data)
        return BytesHeaderParser().parsebytes(data), data
    return inner, data


def _add_message(part: Message, walked: Walked, hint: str | None, parent: str) -> None:
    inner, data = _embedded(part, walked)
    subject = header_text(inner, "subject", hint) if inner is not None else ""
    name = filename(param_view(part, hint), hint)
    name = name or (f"{subject}.eml" if subject else "message.eml")
    append(walked, name, "message/rfc822", data)
    if parent == "report" and inner is not None:
        collect_ids(inner, walked)


def _visit_alternative(
    children: list[Message], walked: Walked, hint: str | None, depth: int
) -> None:
    subs = []
    for child in children:
        if child.get_content_type() in _ALTERNATIVE_ONLY:
            continue  # another rendering of the body we already take, not a file
        sub = Walked(report_type=walked.report_type, visited=walked.visited)
        _visit(child, sub, hint, depth + 1, "alternative")
        walked.visited = sub.visited
        subs.append(sub)
    # RFC 2046: later alternatives are the richer ones; keep the last of each kind.
    walked.plain.extend(next((s.plain for s in reversed(subs) if s.plain), []))
    walked.html.extend(next((s.html for s in reversed(subs) if s.html), []))
    for sub in subs:
        walked.absorb(sub)


def _visit_multipart(part: Message, walked: Walked, hint: str | None, depth: int) -> None:
    subtype = part.get_content_subtype()
    if subtype == "report" and walked.report_type is None:
        walked.report_type = report_type(part)
    if subtype == "alternative":
        _visit_alternative(children(part), walked, hint, depth)
        return
    for child in children(part):
        _visit(child, walked, hint, depth + 1, subtype)


def _add_broken_multipart(part: Message, walked: Walked, hint: str | None) -> None:
    # No boundary was found, so the parts are unreadable; their text is still the sender's.
    walked.add("broken-multipart")
    text = part_text(part, walked, hint)
    if text.strip():
        walked.plain.append(text)


def _visit(part: Message, walked: Walked, hint: str | None, depth: int, parent: str) -> None:
    walked.add(*(type(defect).__name__ for defect in part.defects))
    walked.visited += 1
    if depth > MAX_NESTING:
        walked.add("limit:nesting-depth")
        return
    if walked.visited > MAX_PARTS:  # the raw pre-check can miss parts without Content-Type
        walked.add("limit:part-count")
        return
    _handle(part, walked, hint, depth, parent)
    # Decoding the payload can add defects of its own (e.g. bad base64 padding).
    walked.add(*(type(defect).__name__ for defect in part.defects))


def _handle(part: Message, walked: Walked, hint: str | None, depth: int, parent: str) -> None:
    content_type = part.get_content_type()
    # message/* parts count as multipart to the stdlib, so test them first.
    if content_type in ("message/rfc822", "message/global"):
        _add_message(part, walked, hint, parent)
    elif content_type in ("message/delivery-status", "message/global-delivery-status"):
        add_delivery_status(part, walked)
    elif part.get_content_maintype() == "message" and part.is_multipart():
        add_message_fields(part, walked, parent)
    elif part.is_multipart():
        _visit_multipart(part, walked, hint, depth)
    elif part.get_content_maintype() == "multipart":
        _add_broken_multipart(part, walked, hint)
    elif _is_body(part, content_type):
        _add_body(part, walked, hint)
    elif content_type == "text/rfc822-headers":
        add_headers_part(part, walked, parent)
    else:
        _add_leaf(part, walked, hint, parent)


def walk(msg: Message, hint: str | None = None) -> Walked:
    """Bodies, attachments (with safe names) and report data of a parsed message."""
    walked = Walked()
    _visit(msg, walked, hint, 0, "")
    walked.attachments = [
        a._replace(filename=safe_filename(a.filename, a.content_type, i))
        for i, a in enumerate(walked.attachments, 1)
    ]
    return walked
