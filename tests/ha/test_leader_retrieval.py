"""DefaultLeaderRetrievalService: start once, dedup, errors wrapped and forwarded, nothing after stop."""

from __future__ import annotations

import uuid

import pytest

from standby.ha import DefaultLeaderRetrievalService, LeaderInformation, LeaderRetrievalError
from standby.testing.drivers import TestingLeaderRetrievalDriverFactory
from standby.testing.recording import RecordingRetrievalListener


async def test_start_only_once_and_dedup() -> None:
    factory = TestingLeaderRetrievalDriverFactory()
    service = DefaultLeaderRetrievalService(factory)
    listener = RecordingRetrievalListener()
    await service.start(listener)
    with pytest.raises(RuntimeError, match="only be started once"):
        await service.start(RecordingRetrievalListener())
    sid = uuid.uuid4()
    info = LeaderInformation.known(sid, "addr")
    factory.driver.notify(info)
    factory.driver.notify(info)
    factory.driver.notify(LeaderInformation.empty())
    factory.driver.notify(LeaderInformation.empty())
    assert listener.notifications == [("addr", sid), (None, None)]
    await service.stop()
    assert factory.driver.closed
    factory.driver.notify(LeaderInformation.known(uuid.uuid4(), "late"))
    assert len(listener.notifications) == 2


async def test_errors_wrapped_and_ignored_after_stop() -> None:
    factory = TestingLeaderRetrievalDriverFactory()
    service = DefaultLeaderRetrievalService(factory)
    listener = RecordingRetrievalListener()
    await service.start(listener)
    cause = OSError("watch failed")
    factory.driver.fail(cause)
    [error] = listener.errors
    assert isinstance(error, LeaderRetrievalError)
    assert error.__cause__ is cause
    await service.stop()
    factory.driver.fail(OSError("after stop"))
    assert len(listener.errors) == 1
