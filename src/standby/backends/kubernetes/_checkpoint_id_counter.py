"""KubernetesCheckpointIDCounter: the next checkpoint id as key ``counter`` of a job's ConfigMap (Flink §3.7).

``get_and_increment`` is a compare-and-swap of the ConfigMap (absent key: 1), fenced like every standby HA write
(Flink 2.x does not fence it): a deposed leader gets ``FencingError`` (Flink: "... does not have the leadership").
"""

from __future__ import annotations

import logging

from standby.ha import INITIAL_CHECKPOINT_ID, CheckpointIDCounter, CorruptHaDataError, JobStatus

from ._client import ConfigMapNotFoundError, KubernetesConfigMap, KubernetesError
from ._fencing import FencedConfigMapWriter
from ._utils import CHECKPOINT_COUNTER_KEY

_log = logging.getLogger(__name__)


class KubernetesCheckpointIDCounter(CheckpointIDCounter):
    """Flink's ``KubernetesCheckpointIDCounter``."""

    def __init__(self, writer: FencedConfigMapWriter) -> None:
        self._writer = writer
        self._running = False

    @property
    def config_map_name(self) -> str:
        return self._writer.config_map_name

    def _read(self, config_map: KubernetesConfigMap) -> int:
        value = config_map.data.get(CHECKPOINT_COUNTER_KEY)
        if value is None:
            return INITIAL_CHECKPOINT_ID
        try:
            return int(value)
        except ValueError:
            raise CorruptHaDataError(
                f"The checkpoint id counter {CHECKPOINT_COUNTER_KEY!r} of ConfigMap {self.config_map_name} is "
                f"{value!r}, not a number. Set it to the next checkpoint id or remove the key."
            ) from None

    async def start(self) -> None:
        self._running = True

    async def shutdown(self, status: JobStatus) -> None:
        if not self._running:
            return
        self._running = False
        if not status.is_globally_terminal_state():
            return

        def remove(current: KubernetesConfigMap) -> dict[str, str] | None:
            if CHECKPOINT_COUNTER_KEY not in current.data:
                return None
            return {k: v for k, v in current.data.items() if k != CHECKPOINT_COUNTER_KEY}

        try:
            await self._writer.update(remove)
        except ConfigMapNotFoundError:
            _log.debug("ConfigMap %s is gone: no counter to remove", self.config_map_name)

    async def get_and_increment(self) -> int:
        taken: list[int] = []

        def increment(current: KubernetesConfigMap) -> dict[str, str]:
            value = self._read(current)
            taken[:] = [value]
            return {**current.data, CHECKPOINT_COUNTER_KEY: str(value + 1)}

        await self._writer.update(increment)
        return taken[0]

    async def get(self) -> int:
        current = await self._writer.get()
        if current is None:
            raise KubernetesError(f"ConfigMap {self.config_map_name} does not exist.")
        return self._read(current)

    async def set_count(self, new_id: int) -> None:
        value = str(new_id)

        def change(current: KubernetesConfigMap) -> dict[str, str] | None:
            if current.data.get(CHECKPOINT_COUNTER_KEY) == value:
                return None
            return {**current.data, CHECKPOINT_COUNTER_KEY: value}

        await self._writer.update(change)
