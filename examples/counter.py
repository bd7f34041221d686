"""Counter: each subtask counts its share of 1..N; the state IS the count, so results are exact across failovers.

    standby run examples/counter.py --parallelism 2 --arg 2000 --arg 5

Arguments: N (default 1000), milliseconds per step (default 5). Result: ``count`` = N and ``sum`` = N*(N+1)/2,
summed over all subtasks.
"""

from __future__ import annotations

import time

from standby import Task


class Counter(Task):
    def restore(self, state: bytes | None) -> None:
        args = self.context.args
        total = int(args[0]) if args else 1000
        self.delay = (float(args[1]) if len(args) > 1 else 5.0) / 1000.0
        # subtask i counts the numbers n in 1..total with n % parallelism == i
        p, i = self.context.parallelism, self.context.subtask_index
        self.numbers = range(i + 1, total + 1, p)
        self.position = int(state) if state else 0

    def step(self) -> bool:
        if self.position >= len(self.numbers):
            return False
        time.sleep(self.delay)
        self.position += 1
        return self.position < len(self.numbers)

    def snapshot(self) -> bytes:
        return str(self.position).encode()

    def result(self) -> dict[str, int]:
        done = self.numbers[: self.position]
        return {"count": len(done), "sum": sum(done)}
