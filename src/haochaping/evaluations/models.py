"""Evaluations (评价): append-only; no route updates or deletes one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from haochaping.core.choices import check_between, check_in
from haochaping.db.base import Base, UTCDateTime, utcnow
from haochaping.db.types import (
    BigIntPK,
    EncryptedString,
    EncryptedText,
    identity_hash_default,
)
from haochaping.evaluations.choices import STORED_CHANNELS, Level


class ReasonTag(Base):
    """A selectable reason for one level, in one version of the tag set."""

    __tablename__ = "reason_tag"
    __table_args__ = (CheckConstraint(check_between("level", Level), name="level_range"),)

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    text: Mapped[str] = mapped_column(String(200))


class Evaluation(Base):
    """One rating of a case (or of an org/item for general and supervisory channels)."""

    __tablename__ = "evaluation"
    __table_args__ = (
        CheckConstraint(check_between("level", Level), name="level_range"),
        CheckConstraint("eval_count BETWEEN 1 AND 2", name="count_range"),
        CheckConstraint(check_in("channel", STORED_CHANNELS), name="channel_valid"),
        # Once per case, stage and count: a second rating is a conflict, never an overwrite.
        # On PostgreSQL the table is partitioned by month (migration 0030) and a unique key
        # must contain the month: this rule lives in `evaluation_once` there (below).
        UniqueConstraint("case_id", "stage", "eval_count", info={"dialects": ("sqlite",)}),
        Index("ix_evaluation_org_received", "org_id", "received_at"),
        # Time ranges: a b-tree on SQLite; on PostgreSQL the BRIN index below serves them (at
        # 10M ratings the b-tree took 214 MB and no read was slower without it, benchmarks.md).
        Index("ix_evaluation_received", "received_at", info={"dialects": ("sqlite",)}),
        # An item's recent ratings as one index range (the emerging topics' examples): with
        # the item index alone the planner ANDs it with the whole window's receipt range.
        Index("ix_evaluation_item_received", "item_id", "received_at"),
        # The console's list of ratings: newest rating time first, the id breaking ties ...
        Index("ix_evaluation_evaluated_id", "evaluated_at", "id"),
        # ... and one unit's ratings in that order, without walking everyone else's.
        Index("ix_evaluation_org_evaluated_id", "org_id", "evaluated_at", "id"),
        # Time ranges on PostgreSQL: ratings arrive in received_at order, so a block range
        # index of a few pages narrows a month to its blocks (SQLite has no BRIN).
        Index(
            "ix_evaluation_received_brin",
            "received_at",
            postgresql_using="brin",
            info={"dialects": ("postgresql",)},
        ),
        # The bad-review funnel of a scope: its organisations' bad first ratings of a period as
        # index ranges, without the good ones around them (a city's 30 days at 10M ratings:
        # ~330 of ~27,000). Levels 1-2 are the default bad levels (a policy may add level 3:
        # then the funnel reads as before).
        Index(
            "ix_evaluation_org_received_bad",
            "org_id",
            "received_at",
            postgresql_where=text("level <= 2 AND eval_count = 1"),
            sqlite_where=text("level <= 2 AND eval_count = 1"),
        ),
        # A rating reported up by a child instance (上报), by its id there: once per child
        # (on PostgreSQL `evaluation_origin` holds the rule, this index serves the lookups).
        Index(
            "ix_evaluation_origin",
            "origin_client_id",
            "origin_ref",
            unique=True,
            info={"dialects": ("sqlite",)},
        ),
        Index(
            "ix_evaluation_origin_lookup",
            "origin_client_id",
            "origin_ref",
            info={"dialects": ("postgresql",)},
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("service_case.id"))
    stage: Mapped[str] = mapped_column(String(30), default="whole")
    eval_count: Mapped[int] = mapped_column(SmallInteger, default=1)
    channel: Mapped[str] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(SmallInteger)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # As stored and shown: ID-card and mobile numbers the rater typed are masked at intake.
    comment: Mapped[str | None] = mapped_column(Text)
    # The comment as typed, SM4-encrypted, kept only when masking changed it; revealed to a
    # handler through an audited route (POST /evaluations/{id}/reveal-comment).
    comment_original: Mapped[str | None] = mapped_column(EncryptedText)
    tagset_version: Mapped[str] = mapped_column(String(32))
    # Who was rated: the serving organisation, and where known the item, window and staff.
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), index=True)
    window_id: Mapped[int | None] = mapped_column(ForeignKey("org.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    # Who rated (personal data: masked in every answer).
    rater_type: Mapped[str] = mapped_column(String(20), default="person")
    rater_name: Mapped[str | None] = mapped_column(String(200))
    rater_cert_type: Mapped[str | None] = mapped_column(String(20))
    # SM4-encrypted at rest; the keyed hashes find a rater without decrypting anything.
    rater_cert_no: Mapped[str | None] = mapped_column(EncryptedString)
    rater_phone: Mapped[str | None] = mapped_column(EncryptedString)
    rater_cert_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, default=identity_hash_default("rater_cert_no", "cert")
    )
    rater_phone_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, default=identity_hash_default("rater_phone", "phone")
    )
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    # A system default rating (默认评价) recorded by policy: marked and reported apart.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Where it came from.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitation.id"))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    device_id: Mapped[str | None] = mapped_column(String(100))
    # The 12345 hotline call a rating was recorded in (channel `phone`, by the agent on the
    # caller's behalf): the hotline system's own id of the call.
    call_id: Mapped[str | None] = mapped_column(String(64))
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the rater was shown the faces (a window evaluator's screen), where the channel
    # knows it: evaluated_at minus this is the display-to-press delay the instant-press check
    # (integrity `instant_pad`) measures; None: unknown (it falls back to the completion).
    displayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Reported up by a child instance (exchange/federation.py): the child's API client and
    # the rating's id there; None for the ratings taken here.
    # Plain column, not a foreign key (as invitation.evaluation_id): client_id names it too.
    origin_client_id: Mapped[int | None] = mapped_column(BigInteger)
    origin_ref: Mapped[int | None] = mapped_column(BigInteger)


# PostgreSQL only (migration 0030): `evaluation` is partitioned by month of receipt, and what
# must be unique across months lives in these narrow tables, filled by the BEFORE INSERT
# trigger `evaluation_claim` in the same statement (a rating whose case and stage, or origin,
# is taken is skipped as by ON CONFLICT DO NOTHING). References to a rating point at
# `evaluation_key`. Nothing writes them from Python. docs/architecture.md, "Monthly partitions".
PG_ONLY = {"dialects": ("postgresql",)}


class EvaluationKey(Base):
    """A rating's id, unique across the monthly partitions (PostgreSQL only)."""

    __tablename__ = "evaluation_key"
    __table_args__ = {"info": PG_ONLY}

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EvaluationOnce(Base):
    """Once per case, stage and count across the monthly partitions (PostgreSQL only)."""

    __tablename__ = "evaluation_once"
    __table_args__ = {"info": PG_ONLY}

    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    stage: Mapped[str] = mapped_column(String(30), primary_key=True)
    eval_count: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(BigInteger)


class EvaluationOrigin(Base):
    """Once per child instance's rating across the monthly partitions (PostgreSQL only)."""

    __tablename__ = "evaluation_origin"
    __table_args__ = {"info": PG_ONLY}

    origin_client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    origin_ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    evaluation_id: Mapped[int] = mapped_column(BigInteger)


class Invitation(Base):
    """A signed, single-use rating link for a case's applicant."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id"), index=True)
    stage: Mapped[str] = mapped_column(String(30), default="whole")
    channel: Mapped[str] = mapped_column(String(20), default="qrcode")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Plain column, not a foreign key: evaluation.invitation_id already links the pair.
    evaluation_id: Mapped[int | None] = mapped_column(BigIntPK)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsDialogue(Base):
    """A bad level given by SMS reply, held until the reply with its reason arrives (the
    rating is then stored with it as the comment). A row whose invitation's window ends first
    stays as the record of the level that was never completed (no rating is stored: a bad
    rating needs a reason)."""

    __tablename__ = "sms_dialogue"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("invitation.id"), index=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the reason arrived and the rating was stored, or a new level replaced it.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
