"""accounts.service.sign_in: the one sequence behind the token route and the console form."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from haochaping.accounts import service as account_service
from haochaping.accounts.models import User
from haochaping.core.errors import RateLimited, Unauthenticated
from haochaping.core.ratelimit import LoginGuard, MemoryCounter
from tests.factories import PASSWORD


async def test_failures_lock_the_place_out_even_for_the_right_password(db, world):
    guard = LoginGuard(MemoryCounter(), max_failures=2, lockout_seconds=60)
    name = world.users["unit_a"]

    async def sign_in(password: str, ip: str = "198.51.100.1") -> User:
        return await account_service.sign_in(
            db=db, guard=guard, username=name, password=password, source_ip=ip
        )

    for _ in range(2):
        with pytest.raises(Unauthenticated) as exc:
            await sign_in("wrong-password")
        assert exc.value.code == "invalid_credentials"
    user = (await db.execute(select(User).where(User.username == name))).scalar_one()
    assert user.failed_logins == 2
    with pytest.raises(RateLimited) as locked:
        await sign_in(PASSWORD)
    assert locked.value.code == "login_locked" and locked.value.status_code == 429
    # The lock holds one place, not the person: from elsewhere the right password works.
    assert (await sign_in(PASSWORD, ip="198.51.100.2")).id == user.id
    assert user.failed_logins == 0
