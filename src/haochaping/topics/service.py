"""The administrators' part of the text analysis: the words of the segmentation dictionary."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core import audit
from haochaping.core.audit import AuditAction
from haochaping.core.errors import Conflict, Invalid
from haochaping.topics.models import TopicWord
from haochaping.topics.segment import shipped_terms

# A dictionary word: 2 to 32 characters, Chinese characters, letters and digits, at least one
# Chinese character (what the segmenter counts as a term).
_WORD = re.compile(r"^(?=.*[\u4E00-\u9FD5])[\u4E00-\u9FD5A-Za-z0-9]{2,32}$")


async def add_word(
    *, db: AsyncSession, word: str, actor: str, actor_role: str | None, note: str | None = None
) -> TopicWord:
    """Add a service term to the segmentation dictionary (effective for the comments segmented
    from the next pass on; `jobs.rebuild` segments the old ones again)."""
    word = word.strip()
    if not _WORD.match(word):
        raise Invalid(
            "词语应为 2 到 32 个字符的汉字、字母或数字，且至少含一个汉字",
            code="invalid_word",
            details=[{"field": "word"}],
        )
    exists = (await db.execute(select(TopicWord).where(TopicWord.word == word))).scalar()
    if exists is not None or word in shipped_terms():
        raise Conflict("词典中已有该词语", code="duplicate_word", details=[{"field": "word"}])
    row = TopicWord(word=word, note=(note or "").strip()[:200] or None, created_by=actor)
    db.add(row)
    await db.flush()
    audit.record(
        db,
        actor=actor,
        actor_role=actor_role,
        action=AuditAction.ADD_TOPIC_WORD,
        target_type="topic_word",
        target_id=row.id,
        detail={"word": word},
    )
    return row


async def list_words(*, db: AsyncSession) -> list[TopicWord]:
    """The administrators' words, oldest first."""
    return list((await db.execute(select(TopicWord).order_by(TopicWord.id))).scalars())
