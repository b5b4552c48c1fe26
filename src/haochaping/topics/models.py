"""Tables of the text analysis: counts of terms per day (read side, rebuilt from the ratings at
any time) and the administrators' dictionary words (on record, never deleted)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.core.choices import ChoiceSet, check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import BigIntPK


class LevelClass(ChoiceSet):
    """The level classes the counts are kept per (levels 1-2, 3, 4-5)."""

    BAD = "bad", "差评"
    BASIC = "basic", "基本满意"
    GOOD = "good", "满意及以上"


def level_class(level: int) -> LevelClass:
    if level <= 2:
        return LevelClass.BAD
    return LevelClass.BASIC if level == 3 else LevelClass.GOOD


class Gram(ChoiceSet):
    """What a counted string is."""

    REASON = "reason", "评价原因"  # a reason code of the tag set
    TERM = "term", "词语"  # one word of the comments
    PHRASE = "phrase", "短语"  # two neighbouring words ("排队时间 太长": stored with a space)


class TopicTermDay(Base):
    """Comments (or, for reasons, ratings) of one local day, organisation, item and level class
    that name a term, phrase or reason code: each counted once per rating."""

    __tablename__ = "topic_term_day"
    __table_args__ = (
        CheckConstraint(check_in("level_class", LevelClass), name="level_class_valid"),
        CheckConstraint(check_in("gram", Gram), name="gram_valid"),
        Index("ix_topic_term_day_item_day", "item_id", "day"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # The unit rated: the window when known, else the organisation (no foreign keys: a read
    # side that can be emptied and rebuilt).
    org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # 0: no item
    level_class: Mapped[str] = mapped_column(String(5), primary_key=True)
    gram: Mapped[str] = mapped_column(String(6), primary_key=True)
    term: Mapped[str] = mapped_column(String(70), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class TopicVolumeDay(Base):
    """The volume the term counts are measured against: valid first ratings, and those with
    a comment, of one local day, organisation, item and level class."""

    __tablename__ = "topic_volume_day"
    __table_args__ = (
        CheckConstraint(check_in("level_class", LevelClass), name="level_class_valid"),
        Index("ix_topic_volume_day_day", "day"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level_class: Mapped[str] = mapped_column(String(5), primary_key=True)
    ratings: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)


class TopicTermRegionDay(Base):
    """What `TopicTermDay` counts, per local day and region of the rating without the unit
    and the item: a region's top terms over a month read a few rows per day and term
    instead of one per unit, item and term."""

    __tablename__ = "topic_term_region_day"
    __table_args__ = (
        CheckConstraint(check_in("level_class", LevelClass), name="level_class_valid"),
        CheckConstraint(check_in("gram", Gram), name="gram_valid"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)  # "": none
    level_class: Mapped[str] = mapped_column(String(5), primary_key=True)
    gram: Mapped[str] = mapped_column(String(6), primary_key=True)
    term: Mapped[str] = mapped_column(String(70), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class TopicVolumeRegionDay(Base):
    """What `TopicVolumeDay` counts, per local day and region of the rating."""

    __tablename__ = "topic_volume_region_day"
    __table_args__ = (
        CheckConstraint(check_in("level_class", LevelClass), name="level_class_valid"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    level_class: Mapped[str] = mapped_column(String(5), primary_key=True)
    ratings: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)


class TopicWord(Base):
    """A service term an administrator added to the segmentation dictionary (from the next
    comments segmented on; earlier counts stay as they were segmented)."""

    __tablename__ = "topic_word"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    word: Mapped[str] = mapped_column(String(32), unique=True)
    note: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TopicTermWeek(Base):
    """The emerging-topics question at province scale: bad and 基本满意 comments naming a term,
    per local ISO week (its Monday), region of the rating and item (no organisation: a
    region's week is a few rows per item, not one per unit)."""

    __tablename__ = "topic_term_week"
    # The weekly counts of the few (item, term) pairs shown, without the weeks' other rows.
    __table_args__ = (Index("ix_topic_term_week_item_term", "item_id", "term"),)

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    term: Mapped[str] = mapped_column(String(70), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class TopicVolumeWeek(Base):
    """Valid first ratings per local ISO week, region and item: what the week's term counts
    are measured against."""

    __tablename__ = "topic_volume_week"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ratings: Mapped[int] = mapped_column(Integer, default=0)


class TopicTermRun(Base):
    """Running sums behind the default emerging question (the last 4 ISO weeks against the 8
    before, as of the week in the job's `topics.run_week` watermark): bad and 基本满意
    comments naming a term, per region and item, where a rating counts at its own region,
    at every region above it and at "*" (everything). A region's question reads its own rows
    only, a few per item, instead of grouping twelve weeks of `topic_term_week`."""

    __tablename__ = "topic_term_run"

    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    term: Mapped[str] = mapped_column(String(70), primary_key=True)
    recent: Mapped[int] = mapped_column(Integer, default=0)
    before: Mapped[int] = mapped_column(Integer, default=0)


class TopicVolumeRun(Base):
    """Valid first ratings per region (expanded as in `TopicTermRun`) and item, in the recent
    and the baseline weeks of the running sums."""

    __tablename__ = "topic_volume_run"

    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    recent: Mapped[int] = mapped_column(Integer, default=0)
    before: Mapped[int] = mapped_column(Integer, default=0)
