"""The decision thresholds in force: saved in the admin database, delivered with the answers.

Which turns the bot answers, clarifies or hands off is decided by six thresholds (see
``retrieval.decision``). They used to live only in ``retrieval/thresholds.json``, read when an
action server starts; an admin who moves them in the console's simulator needs them to take
effect everywhere within seconds and to know who changed them. So each saved setting is a row
(the newest is in force, every one is audited), the first seeded from the file, and the
answers feed (``crud.answer_changes``) carries the one in force to every retriever.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from admin_api.models import DecisionThresholds, ThresholdPair, ThresholdSetting, ThresholdsRead
from common import audit
from common.config import get_settings
from retrieval.decision import Calibration, Thresholds

SEED_AUTHOR = "seed"


def _latest(session: Session) -> ThresholdSetting | None:
    newest = session.exec(select(func.max(ThresholdSetting.id))).one()  # type: ignore[call-overload]
    return session.get(ThresholdSetting, newest) if newest is not None else None


def in_force(session: Session) -> ThresholdSetting:
    """The newest saved setting; the first call on a new database seeds it from the
    thresholds file (and commits, so that every reader agrees on revision 1)."""
    row = _latest(session)
    if row is not None:
        return row
    # Not audited: nobody chose it, and the row itself says where it came from. (Any read
    # may seed, the answers feed's included: an audit entry would appear at no one's act.)
    path = get_settings().retriever_thresholds
    row = ThresholdSetting(calibration=Calibration.load(path).to_dict(), author=SEED_AUTHOR,
                           note=f"seeded from {path.name}")
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def calibration_of(row: ThresholdSetting) -> Calibration:
    return Calibration.from_dict(row.calibration, f"saved revision {row.id}")


def record(session: Session, actor: str, calibration: Calibration, note: str,
           action: str = "thresholds.update") -> ThresholdSetting:
    """A new revision in force (the caller commits), audited with what it replaced."""
    before = _latest(session)
    row = ThresholdSetting(calibration=calibration.to_dict(), author=actor, note=note)
    session.add(row)
    session.flush()
    audit.record(session, actor, action, "thresholds", row.id, note=note,
                 before=_thresholds_of(before.calibration) if before else None,
                 after=_thresholds_of(row.calibration))
    return row


def _thresholds_of(calibration: dict) -> dict:
    return {key: calibration[key] for key in ("without_ranking", "with_ranking")}


def save(session: Session, actor: str, pair: ThresholdPair, note: str) -> ThresholdSetting:
    """New thresholds on the weights in force (moving the weights would change every score
    the simulator cached, so only a calibration changes them)."""
    current = calibration_of(in_force(session))
    chosen = Calibration(boost=current.boost, support=current.support,
                         without_ranking=_thresholds(pair.without_ranking),
                         with_ranking=_thresholds(pair.with_ranking),
                         chosen_on=current.chosen_on)
    return record(session, actor, chosen, note)


def _thresholds(values: DecisionThresholds) -> Thresholds:
    return Thresholds(fallback=values.fallback, margin=values.margin, answer=values.answer)


def read(row: ThresholdSetting) -> ThresholdsRead:
    calibration = calibration_of(row)
    assert row.id is not None
    return ThresholdsRead(
        revision=row.id, boost=calibration.boost, support=calibration.support,
        chosen_on=calibration.chosen_on, author=row.author, note=row.note,
        created_at=row.created_at,
        without_ranking=DecisionThresholds(**vars(calibration.without_ranking)),
        with_ranking=DecisionThresholds(**vars(calibration.with_ranking)),
    )


def history(session: Session, limit: int = 20) -> list[ThresholdsRead]:
    rows = session.exec(select(ThresholdSetting).order_by(
        ThresholdSetting.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
    return [read(row) for row in rows]


def feed_fields(session: Session) -> dict:
    """What the answers feed says of the thresholds: the calibration in force and its
    revision (a retriever applies a revision it has not seen)."""
    row = in_force(session)
    return {"calibration": dict(row.calibration), "calibration_revision": row.id}
