"""The citizen rating form: parsed from the posted fields, kept for a re-render on error."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.datastructures import FormData

from haochaping.core.handlers import validation_details, validation_message
from haochaping.evaluations.schemas import COMMENT_MAX

MAX_REASONS = 20


@dataclass
class RatingForm:
    """What the citizen entered: a level (1–5), reason codes and a comment."""

    level: int | None = None
    reasons: list[str] = field(default_factory=list)
    comment: str = ""

    @classmethod
    def from_form(cls, form: FormData) -> RatingForm:
        """Read the posted fields; a missing or odd level stays None."""
        raw = form.get("level")
        level = int(raw) if isinstance(raw, str) and raw in {"1", "2", "3", "4", "5"} else None
        reasons = [r for r in form.getlist("reasons") if isinstance(r, str)][:MAX_REASONS]
        comment = form.get("comment")
        # Browsers send textarea line breaks as CRLF but count them as one character.
        text = comment.replace("\r\n", "\n") if isinstance(comment, str) else ""
        return cls(level=level, reasons=reasons, comment=text)


def validation_problem(exc: ValidationError) -> str:
    """A sentence a citizen can act on, for input the rating schema refused."""
    details = validation_details(exc.errors())
    fields = {d["field"] for d in details}
    if "comment" in fields:
        return f"评价内容不能超过 {COMMENT_MAX} 字"
    if any(f and f.startswith("reasons") for f in fields):
        return "所选的评价原因无效，请重新选择"
    return validation_message(details)
