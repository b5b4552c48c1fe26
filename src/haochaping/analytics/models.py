"""Rollup tables of the statistics (the read side at province scale, `analytics/rollups.py`).

Each row holds, for one key, the first ratings (eval_count 1) of a period counted by standing
and level. A rating is added to the row of every strict ancestor of the organisation it rates
(the node): a city's month is a handful of rows at the city's node, not a scan of its units.
Ratings of a node's own organisation are read from the ratings table (an index range). Nothing
here is business data: the tables can be emptied and rebuilt from the ratings at any time.

Measures (the same on every table):
  v1..v5  valid, not a system default, by level (what counts: 好评率, 差评率, score)
  h1..h5  held (待复核), not a default, by level (counts only where the policy says so)
  inv     invalid, not a default
  d, dh, di  system defaults (reported apart): all, held, invalid
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haochaping.db.base import Base, UTCDateTime
from haochaping.db.types import BigIntPK

MEASURES = ("v1", "v2", "v3", "v4", "v5", "h1", "h2", "h3", "h4", "h5", "inv", "d", "dh", "di")


class _Measures:
    v1: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    v2: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    v3: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    v4: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    v5: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    h1: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    h2: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    h3: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    h4: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    h5: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    inv: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    d: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dh: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    di: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StatDayNode(_Measures, Base):
    """One local day (Asia/Shanghai) of one node's subtree, per channel: series, summaries,
    the channel and level mix."""

    __tablename__ = "stat_day_node"

    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)


class StatMonthKey(_Measures, Base):
    """One local month of one node's subtree, per rated thing (`dim`: org, window, staff,
    item; `key` its id): rankings and breakdowns."""

    __tablename__ = "stat_month_key"

    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dim: Mapped[str] = mapped_column(String(10), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class StatMonthReason(_Measures, Base):
    """One local month of one node's subtree, per reason tag named by its ratings."""

    __tablename__ = "stat_month_reason"

    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(16), primary_key=True)


class StatRankingSnapshot(Base):
    """The answer of one ranking question about a closed period, kept while it holds
    (`analytics/snapshots.py`): good while no directory change follows `directory_mark` and
    no standing change after `event_mark` touches a rating received in [since, until)."""

    __tablename__ = "stat_ranking_snapshot"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    tier: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    directory_mark: Mapped[int] = mapped_column(BigInteger)
    event_mark: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)  # the API's JSON of it, served as stored
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
