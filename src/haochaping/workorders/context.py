"""What the closed loop needs besides the database: deadlines on the working-day calendar,
and the settings that links and notifications are built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from haochaping.config import Settings
from haochaping.core.security import load_signed, signer
from haochaping.core.timeutil import SHANGHAI
from haochaping.db.crypto import DataKeys
from haochaping.policies.schemas import PolicyValues

PROGRESS_SALT = "progress"


class Deadlines:
    """Deadlines in working days, end of day in Asia/Shanghai, flagged when unverified."""

    def __init__(self, calendar: Any) -> None:
        self.calendar = calendar

    def compute(
        self, start: datetime, days: int, warn_days: int
    ) -> tuple[datetime, datetime, bool]:
        """(due, warn from, verified): warn `warn_days` working days before the due day."""
        due, verified = self.calendar.deadline_at(start, days)
        if days > warn_days:
            warn, ok = self.calendar.deadline_at(start, days - warn_days)
            verified = verified and ok
        else:
            warn = start + (due - start) / 2
        return due, warn, verified

    def set_verify(self, order: Any, start: datetime, policy: PolicyValues) -> bool:
        due, warn, verified = self.compute(start, policy.verify_days, policy.warn_days)
        order.verify_due_at, order.verify_warn_at = due, warn
        return verified

    def set_rectify(self, order: Any, start: datetime, days: int, policy: PolicyValues) -> bool:
        due, warn, verified = self.compute(start, days, policy.warn_days)
        order.rectify_due_at, order.rectify_warn_at = due, warn
        return verified

    def remaining(self, due_at: datetime, now: datetime) -> int:
        """Working days left until the due day (0 on the day, negative when overdue)."""
        today = now.astimezone(SHANGHAI).date()
        due_day = due_at.astimezone(SHANGHAI).date()
        if due_at < now:
            return -max(1, self.calendar.workdays_between(due_day, today))
        return self.calendar.workdays_between(today, due_day)


@dataclass
class LoopContext:
    settings: Settings
    deadlines: Deadlines
    keys: DataKeys  # the app's data keys (appeals register raters by keyed hash)

    def progress_token(self, evaluation_id: int) -> str:
        """A signed link token that lets the rater follow their own bad review."""
        return signer(self.settings.secret_key, PROGRESS_SALT).dumps({"e": evaluation_id})

    def progress_url(self, evaluation_id: int) -> str:
        return f"{self.settings.base_url.rstrip('/')}/p/{self.progress_token(evaluation_id)}"


def read_progress_token(settings: Settings, token: str) -> int | None:
    """The evaluation id behind a progress token, or None when forged."""
    data = load_signed(settings.secret_key, PROGRESS_SALT, token, max_age=None)
    value = data.get("e") if data else None
    return value if isinstance(value, int) else None


def end_of_local_day(moment: datetime) -> datetime:
    """23:59:59.999999 Asia/Shanghai of the moment's local day."""
    local = moment.astimezone(SHANGHAI)
    return (
        local.replace(hour=0, minute=0, second=0, microsecond=0)
        + timedelta(days=1)
        - timedelta(microseconds=1)
    )
