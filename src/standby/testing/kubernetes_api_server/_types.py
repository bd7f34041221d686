"""Type aliases shared by the Kubernetes API test server modules."""

from __future__ import annotations

from typing import Any, TypeAlias

#: A decoded JSON object (Kubernetes objects are kept as plain dicts, never mutated once stored).
JsonObject: TypeAlias = dict[str, Any]
