"""The command's local record (``.cdn-prefetch/<stack>.json``): each shard's last outputs, and every task id
the moment its submit returns.

Why keep one at all, when the cloud's task history is the truth: the history finds every task again,
but only for as long as the cloud keeps it; the record keeps a task id past that, and it is
written before the wait, so an apply interrupted mid-wait (Ctrl-C, a killed CI job) loses none. It
plays the part Pulumi state plays for the provider: the prior outputs ``ShardSync`` may be given.
Deleting it loses nothing the history still holds. It holds task ids and statuses, never a credential.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from ..model.connection import ConfigError

VERSION = 1


class StateFile:
    """Read once, rewritten whole (atomically) on every change: a crash leaves the old or the new file."""

    def __init__(self, path: Path):
        self.path = path
        self.shards: dict[str, dict[str, Any]] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read the state file {path} ({type(exc).__name__}); move it away: the "
                                  "cloud's task history still has every recent task") from None
            shards = data.get("shards") if isinstance(data, dict) else None
            if data.get("version") != VERSION or not isinstance(shards, dict):
                raise ConfigError(f"{path} is not a cdn-prefetch state file of version {VERSION}; move it away")
            self.shards = {str(k): v for k, v in shards.items() if isinstance(v, dict)}

    def prior(self, shard: str) -> Optional[dict[str, Any]]:
        """The shard's last outputs (with every task submitted since), or None."""
        return self.shards.get(shard)

    def record_task(self, shard: str, task: Mapping[str, Any]) -> None:
        """Add one submitted task (``SubmittedTask.to_dict()``) and write the file at once."""
        entry = self.shards.setdefault(shard, {})
        entry.setdefault("submitted", []).append(dict(task))
        self.save()

    def record_outputs(self, shard: str, outputs: Mapping[str, Any]) -> None:
        """The shard's outputs after a converge (their ``submitted`` already holds every task recorded)."""
        self.shards[shard] = dict(outputs)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text(json.dumps({"version": VERSION, "shards": self.shards}, sort_keys=True), encoding="utf-8")
        os.replace(temp, self.path)
