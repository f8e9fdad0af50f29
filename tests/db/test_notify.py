"""db.notify: delivered to every listener when the sending transaction commits, never when
it rolls back; on PostgreSQL through the server, to another engine's listener."""

import asyncio

import pytest

from clarion.db.notify import Listener, notify
from clarion.db.session import Database


async def _listening(db: Database, channel: str) -> tuple[Listener, list[str]]:
    got: list[str] = []
    listener = Listener(db)
    listener.subscribe(channel, got.append)
    await listener.start()
    for _ in range(100):
        if listener.live:
            break
        await asyncio.sleep(0.05)
    assert listener.live
    return listener, got


async def _wait_for(got: list[str], n: int, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if len(got) >= n:
            return
        await asyncio.sleep(0.02)


class TestNotify:
    async def test_commit_delivers_rollback_does_not(self, db: Database) -> None:
        other = Database(db.url)  # another engine: another process's pools
        listener, got = await _listening(other, "wake")
        seen_by_sender, mine = await _listening(db, "wake")
        try:
            async with db.transaction() as session:
                await notify(session, "wake", "one")
                await asyncio.sleep(0.2)
                assert got == []  # not before the commit
            with pytest.raises(RuntimeError):
                async with db.transaction() as session:
                    await notify(session, "wake", "lost")
                    raise RuntimeError("roll back")
            async with db.transaction() as session:
                await notify(session, "other-channel", "x")
                await notify(session, "wake", "two")
            await _wait_for(got, 2)
            await _wait_for(mine, 2)
            await asyncio.sleep(0.2)
            assert got == ["one", "two"]
            assert mine == ["one", "two"]
        finally:
            await listener.stop()
            await seen_by_sender.stop()
            await other.dispose()

    async def test_a_failing_callback_does_not_silence_the_others(self, db: Database) -> None:
        listener, got = await _listening(db, "c")

        def boom(_: str) -> None:
            raise ValueError("bad callback")

        listener.callbacks["c"].insert(0, boom)
        try:
            async with db.transaction() as session:
                await notify(session, "c", "p")
            await _wait_for(got, 1)
            assert got == ["p"]
        finally:
            await listener.stop()

    async def test_payload_limit(self, db: Database) -> None:
        async with db.transaction() as session:
            with pytest.raises(ValueError):
                await notify(session, "c", "x" * 8000)
