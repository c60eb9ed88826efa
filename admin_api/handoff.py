"""Hand-off: the queue of conversations waiting for a person, who holds which, and whether
anyone is there to answer.

The queue is read from the tracker store (a ``pause`` with no later ``resume``). Claims live in
the admin database so that several API processes agree on the one holder; a holder's console
refreshes its claim while the conversation is open, and a claim not refreshed for
``HELPDESK_HANDOFF_CLAIM_MINUTES`` lapses. Staff count as online while a console session of
theirs was seen within ``HELPDESK_STAFF_PRESENCE_MINUTES``; when nobody is, waiting customers are
told when the team is next available (``HELPDESK_OPENING_HOURS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlmodel import Session, select

from admin_api.models import ConsoleSession, HandoffClaim, User, utcnow
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.errors import Conflict, Invalid, NotFound

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RULE = re.compile(r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+"
                   r"(?P<open>\d{1,2}:\d{2})\s*-\s*(?P<close>\d{1,2}:\d{2})\s*$", re.I)
WAITING_ACK = "Thanks, a colleague will reply here shortly."
CLOSED_ACK = ("Nobody from our support team is online right now; we're next available {when}. "
              "Leave your message here and a colleague will reply in this chat then.")
NO_HOURS_ACK = ("Nobody from our support team is online right now. Leave your message here "
                "and a colleague will reply in this chat as soon as they can.")


@dataclass(frozen=True)
class Waiting:
    session_id: str
    paused_at: datetime
    last_message: str | None
    intent: str | None
    holder: str | None
    holder_id: int | None


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def live_claims(session: Session) -> dict[str, HandoffClaim]:
    """Claims whose holder was seen recently enough (lapsed ones are simply ignored)."""
    cutoff = utcnow() - _minutes(get_settings().handoff_claim_minutes)
    rows = session.exec(select(HandoffClaim).where(HandoffClaim.last_seen_at >= cutoff)).all()
    return {row.session_id: row for row in rows}


def queue(session: Session, store: TrackerStore) -> list[Waiting]:
    """Paused conversations, longest waiting first, with who holds each."""
    claims = live_claims(session)
    waiting = []
    for session_id, paused_at in sorted(store.paused().items(), key=lambda kv: kv[1]):
        turns = store.turns(session_id=session_id)
        last = turns[-1] if turns else None
        claim = claims.get(session_id)
        waiting.append(Waiting(session_id, paused_at, last.text if last else None,
                               last.intent if last else None,
                               claim.user_name if claim else None,
                               claim.user_id if claim else None))
    return waiting


def require_waiting(store: TrackerStore, session_id: str) -> None:
    if session_id not in store.paused():
        raise NotFound(f"conversation {session_id} is not waiting for a person")


def claim(session: Session, store: TrackerStore, session_id: str, user: User) -> HandoffClaim:
    """Take the conversation (or refresh one's own claim); refused while a colleague holds
    it. The caller commits."""
    require_waiting(store, session_id)
    assert user.id is not None
    row = session.get(HandoffClaim, session_id, with_for_update=True)
    now = utcnow()
    if row is not None and row.user_id != user.id and \
            now - row.last_seen_at < _minutes(get_settings().handoff_claim_minutes):
        raise Conflict(f"{row.user_name} is handling this conversation")
    if row is None:
        row = HandoffClaim(session_id=session_id, user_id=user.id, user_name=user.name)
    elif row.user_id != user.id:
        row.user_id, row.user_name, row.claimed_at = user.id, user.name, now
    row.last_seen_at = now
    session.add(row)
    return row


def holder_check(session: Session, session_id: str, user_id: int) -> None:
    """Only the holder (or anyone, for an unheld conversation) may write into it."""
    row = live_claims(session).get(session_id)
    if row is not None and row.user_id != user_id:
        raise Conflict(f"{row.user_name} is handling this conversation")


def release(session: Session, session_id: str) -> None:
    session.execute(delete(HandoffClaim).where(HandoffClaim.session_id == session_id))


def staff_online(session: Session) -> bool:
    cutoff = utcnow() - _minutes(get_settings().staff_presence_minutes)
    return session.exec(select(ConsoleSession.id).where(
        ConsoleSession.ended_at.is_(None),  # type: ignore[union-attr]
        ConsoleSession.expires_at > utcnow(),
        ConsoleSession.last_seen_at >= cutoff).limit(1)).first() is not None


def parse_hours(text: str) -> list[tuple[int, int, int]]:
    """``Mon-Fri 09:00-17:00; Sat 10:00-14:00`` as (weekday, open minute, close minute)."""
    spans = []
    for rule in filter(None, (r.strip() for r in text.split(";"))):
        match = _RULE.match(rule)
        if not match:
            raise Invalid(f"opening hours rule {rule!r} is not like 'Mon-Fri 09:00-17:00'")
        first, last = match["first"].lower(), (match["last"] or match["first"]).lower()
        if first not in DAYS or last not in DAYS:
            raise Invalid(f"opening hours rule {rule!r}: days are Mon, Tue, ... Sun")
        opens, closes = (int(t[:-3]) * 60 + int(t[-2:]) for t in (match["open"], match["close"]))
        if not 0 <= opens < closes <= 24 * 60:
            raise Invalid(f"opening hours rule {rule!r}: the opening must precede the closing")
        start, end = DAYS.index(first), DAYS.index(last)
        days = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        spans += [(day, opens, closes) for day in days]
    return spans


def next_open(now: datetime, hours: str, zone: str) -> datetime | None:
    """The start of the next opening period after ``now`` (aware), or ``now`` while open."""
    spans = parse_hours(hours)
    if not spans:
        return None
    local = now.astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    for offset in range(8):
        day = (local.weekday() + offset) % 7
        for span_day, opens, closes in sorted(spans, key=lambda s: s[1]):
            if span_day != day:
                continue
            if offset == 0 and opens <= minute < closes:
                return local
            if offset > 0 or minute < opens:
                date = (local + timedelta(days=offset)).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
                return date + timedelta(minutes=opens)
    return None


def acknowledgement(session: Session) -> dict:
    """What a customer waiting for a person is told once: a colleague will reply shortly, or
    (nobody online) when the team is next available and that a message left here is seen."""
    if staff_online(session):
        return {"staff_online": True, "next_open": None, "message": WAITING_ACK}
    settings = get_settings()
    now = datetime.now(timezone.utc)
    opening = next_open(now, settings.opening_hours, settings.opening_timezone)
    if opening is None or opening <= now:  # no hours set, or open but nobody signed in
        return {"staff_online": False, "next_open": None, "message": NO_HOURS_ACK}
    when = opening.strftime("%A %H:%M") + f" ({settings.opening_timezone})"
    return {"staff_online": False, "next_open": opening,
            "message": CLOSED_ACK.format(when=when)}
