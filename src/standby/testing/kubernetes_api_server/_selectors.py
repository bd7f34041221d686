"""Label and field selectors with the grammar and semantics of k8s.io/apimachinery ``labels``/``fields``.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x,y)``, ``a>1``,
``a<1``, comma-separated and ANDed. Field selectors: ``metadata.name`` and ``metadata.namespace`` with
``=``, ``==`` and ``!=`` (the fields every resource supports).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ._errors import ApiStatusError, bad_request
from ._types import JsonObject
from ._validation import is_qualified_name

Operator = Literal["=", "!=", "in", "notin", "exists", "!", "gt", "lt"]

_TOKEN_RE = re.compile(r"\s*(==|!=|=|!|\(|\)|,|>|<|[^\s,=!()<>]+)")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        # gt / lt compare integers; a label that is not an integer never matches
        if value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.operator == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _parse_error(selector: str, why: str) -> ApiStatusError:
    return bad_request(f'unable to parse requirement: invalid label selector "{selector}": {why}')


def _check_key(selector: str, key: str) -> None:
    problems = is_qualified_name(key)
    if problems:
        raise _parse_error(selector, f'key: Invalid value: "{key}": {"; ".join(problems)}')


def _check_value(selector: str, value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE_RE.match(value):
        raise _parse_error(selector, f'values[0]: Invalid value: "{value}": not a valid label value')


def parse_label_selector(selector: str) -> LabelSelector:
    """Parse ``labelSelector``; a malformed selector is a 400 BadRequest, as on a real apiserver."""
    tokens: list[str] = []
    position = 0
    text = selector.strip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:  # pragma: no cover - the token pattern matches any non-space character
            raise _parse_error(selector, f"unexpected character at {position}")
        tokens.append(match.group(1))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    requirements: list[Requirement] = []
    index = 0

    def take() -> str | None:
        nonlocal index
        if index >= len(tokens):
            return None
        token = tokens[index]
        index += 1
        return token

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    while index < len(tokens):
        token = take()
        if token == "!":
            key = take()
            if key is None or key in ("=", "==", "!=", "(", ")", ",", "!", ">", "<"):
                raise _parse_error(selector, "expected a key after '!'")
            _check_key(selector, key)
            requirements.append(Requirement(key, "!"))
        else:
            if token is None or token in ("=", "==", "!=", "(", ")", ",", ">", "<"):
                raise _parse_error(selector, f"found '{token}', expected: identifier")
            key = token
            _check_key(selector, key)
            operator = peek()
            if operator is None or operator == ",":
                requirements.append(Requirement(key, "exists"))
            elif operator in ("=", "==", "!="):
                take()
                value = peek()
                if value is None or value == ",":
                    value = ""
                else:
                    take()
                _check_value(selector, value)
                requirements.append(Requirement(key, "!=" if operator == "!=" else "=", (value,)))
            elif operator in ("in", "notin"):
                take()
                if take() != "(":
                    raise _parse_error(selector, f"found '{peek()}', expected: '('")
                values: list[str] = []
                while True:
                    item = take()
                    if item is None:
                        raise _parse_error(selector, "found end of selector, expected: ')'")
                    if item == ")":
                        break
                    if item == ",":
                        continue
                    _check_value(selector, item)
                    values.append(item)
                if not values:
                    raise _parse_error(selector, "for 'in', 'notin' operators, values set can't be empty")
                requirements.append(Requirement(key, "in" if operator == "in" else "notin", tuple(values)))
            elif operator in (">", "<"):
                take()
                bound = take()
                if bound is None or not re.fullmatch(r"-?\d+", bound):
                    raise _parse_error(
                        selector, f"for 'Gt', 'Lt' operators, the value must be an integer: {bound}"
                    )
                requirements.append(Requirement(key, "gt" if operator == ">" else "lt", (bound,)))
            else:
                raise _parse_error(selector, f"found '{operator}', expected: in, notin, =, ==, !=, gt, lt")
        separator = take()
        if separator not in (None, ","):
            raise _parse_error(selector, f"found '{separator}', expected: ',' or 'end of string'")
    return LabelSelector(tuple(requirements))


@dataclass(frozen=True)
class FieldRequirement:
    field: Literal["metadata.name", "metadata.namespace"]
    equals: bool
    value: str


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector over ``metadata.name``/``metadata.namespace``."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: JsonObject) -> bool:
        meta = obj.get("metadata", {})
        for requirement in self.requirements:
            actual = meta.get(requirement.field.removeprefix("metadata."), "")
            if (actual == requirement.value) != requirement.equals:
                return False
        return True

    def exact_name(self) -> str | None:
        """The name this selector pins with ``metadata.name=X``, if any."""
        for requirement in self.requirements:
            if requirement.field == "metadata.name" and requirement.equals:
                return requirement.value
        return None


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(selector: str) -> FieldSelector:
    """Parse ``fieldSelector``; unknown fields and bad syntax are a 400 BadRequest."""
    requirements: list[FieldRequirement] = []
    if not selector.strip():
        return FieldSelector()
    for term in _split_unescaped(selector, ","):
        match = re.fullmatch(r"\s*([^=!\s]+)\s*(==|!=|=)(.*)", term)
        if match is None:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        name, operator, value = match.group(1), match.group(2), _unescape(match.group(3).strip())
        if name not in ("metadata.name", "metadata.namespace"):
            raise bad_request(f"field label not supported: {name}")
        requirements.append(FieldRequirement(name, operator != "!=", value))  # type: ignore[arg-type]
    return FieldSelector(tuple(requirements))
