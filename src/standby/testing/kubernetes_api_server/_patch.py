"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) over plain JSON values.

Strategic merge patch is served as a merge patch: for ConfigMaps and Leases (maps of strings and scalar
fields, no merge-keyed lists beyond ``ownerReferences``/``finalizers``) the two agree except for the
``$patch``/``$retainKeys`` directives, which this server does not interpret.
"""

from __future__ import annotations

import copy
from typing import Any


class JsonPatchError(Exception):
    """A JSON patch could not be applied; the apiserver answers these with 422 (or 400 when malformed)."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _parse_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise JsonPatchError(f"path must be a string, got {pointer!r}", malformed=True)
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise JsonPatchError(f'JSON pointer must be empty or start with a "/": {pointer}')
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _array_index(token: str, length: int, *, allow_end: bool, pointer: str) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise JsonPatchError(f"invalid array index {token!r} in path {pointer}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise JsonPatchError(f"array index out of bounds: {index} in path {pointer}")
    return index


def _parent(doc: Any, tokens: list[str], pointer: str, op: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {pointer}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), allow_end=False, pointer=pointer)]
        else:
            raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {pointer}")
    return node


def _get(doc: Any, pointer: str, op: str) -> Any:
    tokens = _parse_pointer(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, pointer, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(f"{op} operation does not apply: doc is missing key: {pointer}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), allow_end=False, pointer=pointer)]
    raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {pointer}")


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _parse_pointer(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer, "add")
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), allow_end=True, pointer=pointer), value)
    else:
        raise JsonPatchError(f"add operation does not apply: doc is missing path: {pointer}")
    return doc


def _remove(doc: Any, pointer: str, op: str = "remove") -> tuple[Any, Any]:
    tokens = _parse_pointer(pointer)
    if not tokens:
        raise JsonPatchError(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, pointer, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(f"{op} operation does not apply: doc is missing key: {pointer}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), allow_end=False, pointer=pointer))
    raise JsonPatchError(f"{op} operation does not apply: doc is missing path: {pointer}")


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values (RFC 6902 ``test``): ``true`` is not ``1``, ``1`` equals ``1.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and bool(left == right)


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch to a copy of ``doc``: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise JsonPatchError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch", malformed=True
        )
    result = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict):
            raise JsonPatchError(f"invalid JSON patch operation {operation!r}", malformed=True)
        op = operation.get("op")
        path = operation.get("path")
        if not isinstance(path, str):
            raise JsonPatchError(f"{op} operation does not apply: missing path", malformed=op is None)
        if op == "add":
            if "value" not in operation:
                raise JsonPatchError("add operation does not apply: missing value")
            result = _add(result, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            result, _ = _remove(result, path)
        elif op == "replace":
            if "value" not in operation:
                raise JsonPatchError("replace operation does not apply: missing value")
            _get(result, path, "replace")
            result, _ = _remove(result, path, "replace") if _parse_pointer(path) else (result, None)
            result = _add(result, path, copy.deepcopy(operation["value"]))
        elif op in ("move", "copy"):
            source = operation.get("from")
            if not isinstance(source, str):
                raise JsonPatchError(f"{op} operation does not apply: missing from")
            if op == "move":
                if path.startswith(source + "/"):
                    raise JsonPatchError("move operation does not apply: cannot move a value into itself")
                result, value = _remove(result, source, "move")
            else:
                value = copy.deepcopy(_get(result, source, "copy"))
            result = _add(result, path, value)
        elif op == "test":
            expected = operation.get("value")
            try:
                actual = _get(result, path, "test")
            except JsonPatchError:
                actual = None
            if not json_equal(actual, expected):
                raise JsonPatchError(f"testing value {path} failed: test failed")
        else:
            raise JsonPatchError(f"Unexpected kind: {op}", malformed=True)
    return result
