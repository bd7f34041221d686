"""Fencing of HA writes: every write made on behalf of the leader carries a compare on the writer's own election
key (it must still exist with the create revision it had when leadership was granted). A deposed leader — its
lease expired while it was paused or cut off, and another process was elected — fails at etcd with
:class:`~standby.ha.FencingError`, whatever it believes locally. Beyond Flink, where only some writes are checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from standby.ha import FencingError

from ._client import Compare, EtcdClient, Get, Op, TxnResult
from ._lease import EtcdLease

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FencingToken:
    """The leadership of one period: the election key, its create revision and the lease carrying it."""

    election_key: bytes
    create_revision: int
    lease: EtcdLease = field(compare=False)

    def describe(self) -> str:
        return f"election key {self.election_key.decode(errors='replace')} (create revision {self.create_revision})"


class LeadershipFence:
    """The current leadership of this process (set by the election driver), used to fence writes."""

    def __init__(self) -> None:
        self._token: FencingToken | None = None
        self._fenced_out: Callable[[FencingToken, str], None] | None = None

    def grant(self, token: FencingToken, on_fenced_out: Callable[[FencingToken, str], None]) -> None:
        self._token = token
        self._fenced_out = on_fenced_out

    def revoke(self, token: FencingToken | None = None) -> None:
        if token is None or self._token == token:
            self._token = None
            self._fenced_out = None

    def current(self) -> FencingToken | None:
        """The token while leadership is held and its lease is valid locally, else None."""
        token = self._token
        if token is None or not token.lease.is_valid():
            return None
        return token

    def require(self, what: str) -> FencingToken:
        token = self.current()
        if token is None:
            raise FencingError(
                f"Refusing to {what}: this process does not hold leadership in etcd"
                + (" (its lease is no longer valid)" if self._token is not None else "")
                + ". Only the leader writes HA data; the new leader will do it."
            )
        return token

    def fenced_out(self, token: FencingToken, what: str) -> FencingError:
        """etcd refused a write of ``token``: tell the driver (it steps down at once) and build the error."""
        callback = self._fenced_out if self._token == token else None
        if callback is not None:
            callback(token, what)
        return FencingError(
            f"etcd refused to {what}: {token.describe()} no longer exists, so this process is no longer the "
            "leader (its lease expired or it was deposed). The write was not applied."
        )


async def fenced_txn(
    client: EtcdClient,
    fence: LeadershipFence | None,
    what: str,
    compare: Sequence[Compare],
    success: Sequence[Op],
    failure: Sequence[Op] = (),
) -> TxnResult:
    """A txn that also requires the writer's election key; raises FencingError if it is gone.

    ``fence=None`` writes unfenced (tools, tests). The result's responses are those of ``success``/``failure``.
    """
    if fence is None:
        return await client.txn(compare, success, failure, what=what)
    token = fence.require(what)
    result = await client.txn(
        [*compare, Compare.create_revision(token.election_key, "==", token.create_revision)],
        success,
        [Get(token.election_key), *failure],
        what=what,
    )
    if result.succeeded:
        return result
    own = result.get_result(0)
    if not own or own[0].create_revision != token.create_revision:
        raise fence.fenced_out(token, what)
    return TxnResult(False, result.responses[1:])
