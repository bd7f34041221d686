"""Word count over text files: subtask i reads every line whose number modulo the parallelism is i.

    standby run examples/wordcount.py --parallelism 2 --arg examples/data/hamlet.txt --arg examples/data/sonnets.txt

State: the line position and the counts so far, so a restored subtask continues exactly where its checkpoint was.
Result: ``lines``, ``words`` and one count per word (prefixed ``word:``), summed over the subtasks.
"""

from __future__ import annotations

import json
import re

from standby import Task

_WORD = re.compile(r"[a-z']+")


class WordCount(Task):
    def restore(self, state: bytes | None) -> None:
        lines: list[str] = []
        for path in self.context.args:
            with open(path, encoding="utf-8") as f:
                lines.extend(f.read().splitlines())
        p, i = self.context.parallelism, self.context.subtask_index
        self.lines = lines[i::p]
        saved = json.loads(state) if state else {"position": 0, "counts": {}}
        self.position: int = saved["position"]
        self.counts: dict[str, int] = saved["counts"]

    def step(self) -> bool:
        if self.position >= len(self.lines):
            return False
        for word in _WORD.findall(self.lines[self.position].lower()):
            word = word.strip("'")
            if word:
                self.counts[word] = self.counts.get(word, 0) + 1
        self.position += 1
        return self.position < len(self.lines)

    def snapshot(self) -> bytes:
        return json.dumps({"position": self.position, "counts": self.counts}).encode()

    def result(self) -> dict[str, int]:
        out = {f"word:{w}": c for w, c in self.counts.items()}
        out["lines"] = self.position
        out["words"] = sum(self.counts.values())
        return out
