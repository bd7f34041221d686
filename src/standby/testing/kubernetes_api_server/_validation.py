"""Field validation with the apiserver's own wording (k8s.io/apimachinery ``util/validation``).

Each check returns a list of :class:`Cause`; an empty list means valid. Only the rules that matter for
ConfigMaps and Leases are modelled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._errors import Cause

DNS1123_SUBDOMAIN_MAX = 253
DNS1123_LABEL_MAX = 63
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63
CONFIGMAP_KEY_MAX = 253
# corev1 validation: the total of data and binaryData must fit etcd's value limit.
CONFIGMAP_MAX_BYTES = 1024 * 1024
# apimachinery TotalAnnotationSizeLimitB
ANNOTATIONS_MAX_BYTES = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_LABEL_RE = re.compile("^" + _DNS1123_LABEL_FMT + "$")
_DNS1123_SUBDOMAIN_RE = re.compile("^" + _DNS1123_SUBDOMAIN_FMT + "$")
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile("^" + _QUALIFIED_NAME_FMT + "$")
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_RE = re.compile("^" + _LABEL_VALUE_FMT + "$")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile("^" + _CONFIG_KEY_FMT + "$")

_SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{_DNS1123_SUBDOMAIN_FMT}')"
)
_LABEL_ERROR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    f"start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{_DNS1123_LABEL_FMT}')"
)
_QUALIFIED_NAME_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{_QUALIFIED_NAME_FMT}')"
)
_LABEL_VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    f"regex used for validation is '{_LABEL_VALUE_FMT}')"
)
_CONFIG_KEY_ERROR = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    f"'KEY_NAME',  or 'key-name', regex used for validation is '{_CONFIG_KEY_FMT}')"
)


def _quote(value: str) -> str:
    # Go's %q of a plain string; enough for the ASCII-ish values seen in tests.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def invalid_value(field: str, value: str, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {_quote(value)}: {detail}", field)


def required(field: str, detail: str) -> Cause:
    return Cause("FieldValueRequired", f"Required value: {detail}", field)


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}", field)


def too_long(field: str, limit: int) -> Cause:
    return Cause("FieldValueTooLong", f"Too long: must have at most {limit} bytes", field)


def too_long_value(field: str, value: str, limit: int) -> Cause:
    return invalid_value(field, value, f"must be no more than {limit} characters")


def is_dns1123_subdomain(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 subdomain (object names), empty when valid."""
    errors: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errors.append(_SUBDOMAIN_ERROR)
    return errors


def is_dns1123_label(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 label (namespace names), empty when valid."""
    errors: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1123_LABEL_RE.match(value):
        errors.append(_LABEL_ERROR)
    return errors


def is_qualified_name(value: str) -> list[str]:
    """Problems with ``value`` as a label/annotation key (``[prefix/]name``)."""
    parts = value.split("/")
    if len(parts) == 1:
        prefix, name = "", parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character, with an optional DNS subdomain prefix and '/'"
        ]
    errors: list[str] = []
    if prefix:
        errors.extend("prefix part " + e for e in is_dns1123_subdomain(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errors.append(f"name part must be no more than {QUALIFIED_NAME_MAX} characters")
    if name and not _QUALIFIED_NAME_RE.match(name):
        errors.append(_QUALIFIED_NAME_ERROR)
    return errors


def validate_object_name(field: str, name: str) -> list[Cause]:
    return [invalid_value(field, name, e) for e in is_dns1123_subdomain(name)]


def validate_namespace_name(field: str, namespace: str) -> list[Cause]:
    return [invalid_value(field, namespace, e) for e in is_dns1123_label(namespace)]


def validate_labels(field: str, labels: Mapping[str, str]) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in labels.items():
        causes.extend(invalid_value(field, key, e) for e in is_qualified_name(key))
        if len(value) > LABEL_VALUE_MAX:
            causes.append(invalid_value(field, value, f"must be no more than {LABEL_VALUE_MAX} characters"))
        if not _LABEL_VALUE_RE.match(value):
            causes.append(invalid_value(field, value, _LABEL_VALUE_ERROR))
    return causes


def validate_annotations(field: str, annotations: Mapping[str, str]) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for key, value in annotations.items():
        causes.extend(invalid_value(field, key.lower(), e) for e in is_qualified_name(key.lower()))
        total += len(key) + len(value)
    if total > ANNOTATIONS_MAX_BYTES:
        causes.append(too_long(field, ANNOTATIONS_MAX_BYTES))
    return causes


def validate_config_key(field: str, key: str) -> list[Cause]:
    problems: list[str] = []
    if len(key) > CONFIGMAP_KEY_MAX:
        problems.append(f"must be no more than {CONFIGMAP_KEY_MAX} characters")
    if not _CONFIG_KEY_RE.match(key):
        problems.append(_CONFIG_KEY_ERROR)
    if key == ".":
        problems.append("must not be '.'")
    elif key == "..":
        problems.append("must not be '..'")
    elif key.startswith(".."):
        problems.append("must not start with '..'")
    return [invalid_value(field, key, p) for p in problems]
