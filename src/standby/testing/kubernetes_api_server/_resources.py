"""The resource kinds the test server serves (core/v1 ConfigMap, coordination.k8s.io/v1 Lease).

A small typed schema per kind plays the part of the apiserver's Go structs: it type-checks a request body
(wrong JSON types are a 400, as Go's decoder rejects them), drops unknown fields (the default
``fieldValidation=Warn`` behaviour, reported back in a ``Warning`` header), canonicalises timestamps and
base64, sorts maps and omits empty fields exactly where ``omitempty`` would. Validation (422) is separate.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from . import _validation as v
from ._errors import ApiStatusError, Cause, bad_request
from ._types import JsonObject

Omit = Literal["empty", "null", "never"]
ScalarKind = Literal["string", "int32", "int64", "bool", "time", "microtime", "base64"]

_ABSENT: Any = object()

_GO_TYPE: dict[ScalarKind, str] = {
    "string": "string",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
    "time": "v1.Time",
    "microtime": "v1.MicroTime",
    "base64": "[]uint8",
}
_INT_BOUNDS: dict[ScalarKind, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


@dataclass(frozen=True)
class Scalar:
    kind: ScalarKind
    omit: Omit = "empty"


@dataclass(frozen=True)
class MapOf:
    value: Scalar
    omit: Omit = "empty"


@dataclass(frozen=True)
class ListOf:
    item: Scalar | Struct
    omit: Omit = "empty"


@dataclass(frozen=True)
class Struct:
    go_name: str
    fields: tuple[tuple[str, Spec], ...]
    omit: Omit = "never"
    # system fields the server owns: accepted in a body, then dropped without a warning
    dropped: frozenset[str] = frozenset()


Spec = Scalar | MapOf | ListOf | Struct


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def format_time(moment: datetime) -> str:
    """metav1.Time wire form: RFC 3339, whole seconds, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(moment: datetime) -> str:
    """metav1.MicroTime wire form: RFC 3339 with microseconds, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Decoder:
    kind: str
    api_version: str
    unknown: list[str] = field(default_factory=list)

    def fail(self, message: str) -> ApiStatusError:
        return bad_request(
            f'{self.kind} in version "{self.api_version}" cannot be handled as a {self.kind}: {message}'
        )

    def type_error(self, value: Any, struct: str, path: str, go_type: str) -> ApiStatusError:
        return self.fail(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field {struct}.{path} of type {go_type}"
        )

    def scalar(self, spec: Scalar, value: Any, struct: str, path: str) -> Any:
        kind = spec.kind
        if kind in ("string", "time", "microtime", "base64"):
            if not isinstance(value, str):
                raise self.type_error(value, struct, path, _GO_TYPE[kind])
            if kind == "time" or kind == "microtime":
                layout = "2006-01-02T15:04:05Z07:00" if kind == "time" else "2006-01-02T15:04:05.000000Z07:00"
                try:
                    moment = datetime.fromisoformat(value)
                except ValueError:
                    moment = None
                if moment is None or moment.tzinfo is None:
                    raise self.fail(f'parsing time "{value}" as "{layout}": cannot parse "{value}"')
                return format_time(moment) if kind == "time" else format_micro_time(moment)
            if kind == "base64":
                try:
                    raw = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise self.fail(f"illegal base64 data in {path}") from None
                return base64.b64encode(raw).decode("ascii")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.type_error(value, struct, path, "bool")
            return value
        # integers: Go rejects fractions, exponents and out-of-range values
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.type_error(value, struct, path, _GO_TYPE[kind])
        low, high = _INT_BOUNDS[kind]
        if not low <= value <= high:
            raise self.type_error(value, struct, path, _GO_TYPE[kind])
        return value

    def value(self, spec: Spec, value: Any, struct: str, path: str) -> Any:
        """Decode one field; returns _ABSENT when it is to be omitted from the stored object."""
        if value is None:
            # Go leaves a field untouched on JSON null: absent, unless the struct is always emitted.
            return self._empty(spec, struct, path)
        if isinstance(spec, Scalar):
            decoded = self.scalar(spec, value, struct, path)
            if spec.omit == "empty" and decoded in ("", 0, False):
                return _ABSENT
            return decoded
        if isinstance(spec, MapOf):
            if not isinstance(value, dict):
                raise self.type_error(value, struct, path, f"map[string]{_GO_TYPE[spec.value.kind]}")
            out: JsonObject = {}
            for key in sorted(value):
                item = value[key]
                # a null element of a map becomes the zero value in Go
                out[key] = "" if item is None else self.scalar(spec.value, item, struct, f"{path}")
            if spec.omit == "empty" and not out:
                return _ABSENT
            return out
        if isinstance(spec, ListOf):
            if not isinstance(value, list):
                raise self.type_error(value, struct, path, "[]" + _spec_name(spec.item))
            items: list[Any] = []
            for index, item in enumerate(value):
                if isinstance(spec.item, Struct):
                    items.append(self.struct(spec.item, item, f"{path}[{index}]"))
                else:
                    items.append(self.scalar(spec.item, item, struct, path))
            if spec.omit == "empty" and not items:
                return _ABSENT
            return items
        return self.struct(spec, value, path)

    def _empty(self, spec: Spec, struct: str, path: str) -> Any:
        if isinstance(spec, Struct) and spec.omit == "never":
            return self.struct(spec, {}, path)
        if isinstance(spec, Scalar) and spec.omit == "never":
            return {"string": "", "bool": False}.get(spec.kind, 0)
        return _ABSENT

    def struct(self, spec: Struct, value: Any, path: str) -> JsonObject:
        if not isinstance(value, dict):
            raise self.type_error(value, self.kind, path or spec.go_name, spec.go_name)
        known = dict(spec.fields)
        for key in value:
            if key not in known and key not in spec.dropped:
                self.unknown.append(f"{path}.{key}" if path else key)
        out: JsonObject = {}
        for name, field_spec in spec.fields:
            decoded = self.value(field_spec, value.get(name), spec.go_name, name)
            if decoded is not _ABSENT:
                out[name] = decoded
        return out


def _spec_name(spec: Scalar | Struct) -> str:
    return _GO_TYPE[spec.kind] if isinstance(spec, Scalar) else spec.go_name


_STRING = Scalar("string")
_STRING_PTR = Scalar("string", omit="null")

OWNER_REFERENCE = Struct(
    "v1.OwnerReference",
    (
        ("apiVersion", Scalar("string", omit="never")),
        ("kind", Scalar("string", omit="never")),
        ("name", Scalar("string", omit="never")),
        ("uid", Scalar("string", omit="never")),
        ("controller", Scalar("bool", omit="null")),
        ("blockOwnerDeletion", Scalar("bool", omit="null")),
    ),
)

OBJECT_META = Struct(
    "v1.ObjectMeta",
    (
        ("name", _STRING),
        ("generateName", _STRING),
        ("namespace", _STRING),
        ("uid", _STRING),
        ("resourceVersion", _STRING),
        ("creationTimestamp", Scalar("time")),
        ("labels", MapOf(_STRING)),
        ("annotations", MapOf(_STRING)),
        ("ownerReferences", ListOf(OWNER_REFERENCE)),
        ("finalizers", ListOf(_STRING)),
    ),
    # server-owned fields this server does not maintain (generation and deletion state are not modelled
    # for these kinds, managedFields belong to server-side apply); selfLink was removed in 1.24.
    dropped=frozenset(
        {"generation", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"}
    ),
)


def _type_meta_and(go_name: str, *fields: tuple[str, Spec]) -> Struct:
    return Struct(go_name, (("kind", _STRING), ("apiVersion", _STRING), ("metadata", OBJECT_META), *fields))


CONFIGMAP_SCHEMA = _type_meta_and(
    "v1.ConfigMap",
    ("immutable", Scalar("bool", omit="null")),
    ("data", MapOf(_STRING)),
    ("binaryData", MapOf(Scalar("base64"))),
)

LEASE_SCHEMA = _type_meta_and(
    "v1.Lease",
    (
        "spec",
        Struct(
            "v1.LeaseSpec",
            (
                ("holderIdentity", _STRING_PTR),
                ("leaseDurationSeconds", Scalar("int32", omit="null")),
                ("acquireTime", Scalar("microtime", omit="null")),
                ("renewTime", Scalar("microtime", omit="null")),
                ("leaseTransitions", Scalar("int32", omit="null")),
                ("strategy", _STRING_PTR),
                ("preferredHolder", _STRING_PTR),
            ),
        ),
    ),
)


Validator = Callable[[JsonObject, "JsonObject | None"], list[Cause]]


@dataclass(frozen=True)
class ResourceType:
    """One served resource: its REST coordinates, schema and validation."""

    group: str
    version: str
    kind: str
    plural: str
    schema: Struct
    validate_spec: Validator

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified_plural(self) -> str:
        """``configmaps`` or ``leases.coordination.k8s.io``: the resource as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def decode(self, body: Any) -> tuple[JsonObject, list[str]]:
        """Type-check and normalise a request body; returns the object and its unknown field paths."""
        decoder = _Decoder(self.kind, self.api_version)
        if not isinstance(body, dict):
            raise bad_request(
                f"the object provided is unrecognized (must be of type {self.kind}): "
                f"expected a JSON object, got {_json_type(body)}"
            )
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        if kind not in (None, "") and kind != self.kind:
            raise bad_request(
                f"the object provided is unrecognized (must be of type {self.kind}): kind {kind!s} "
                f"does not match the kind of the request"
            )
        if api_version not in (None, "") and api_version != self.api_version:
            raise bad_request(
                f"the API version in the data ({api_version!s}) does not match the expected API version "
                f"({self.api_version})"
            )
        obj = decoder.struct(self.schema, body, "")
        obj["kind"] = self.kind
        obj["apiVersion"] = self.api_version
        return obj, decoder.unknown

    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[Cause]:
        meta = obj.get("metadata", {})
        causes: list[Cause] = []
        name = meta.get("name", "")
        if not name:
            causes.append(v.required("metadata.name", "name or generateName is required"))
        else:
            causes.extend(v.validate_object_name("metadata.name", name))
        causes.extend(v.validate_namespace_name("metadata.namespace", meta.get("namespace", "")))
        causes.extend(v.validate_labels("metadata.labels", meta.get("labels", {})))
        causes.extend(v.validate_annotations("metadata.annotations", meta.get("annotations", {})))
        causes.extend(self.validate_spec(obj, old))
        return causes


def _validate_configmap(obj: JsonObject, old: JsonObject | None) -> list[Cause]:
    causes: list[Cause] = []
    data: dict[str, str] = obj.get("data", {})
    binary: dict[str, str] = obj.get("binaryData", {})
    total = 0
    for key, value in data.items():
        causes.extend(v.validate_config_key(f"data[{key}]", key))
        if key in binary:
            causes.append(v.invalid_value(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(value.encode("utf-8"))
    for key, value in binary.items():
        causes.extend(v.validate_config_key(f"binaryData[{key}]", key))
        total += len(base64.b64decode(value))
    if total > v.CONFIGMAP_MAX_BYTES:
        causes.append(v.too_long("", v.CONFIGMAP_MAX_BYTES))
    if old is not None and old.get("immutable") is True:
        # corev1 ValidateConfigMapUpdate: an immutable ConfigMap keeps its data and its immutability.
        message = "field is immutable when `immutable` is set"
        if obj.get("immutable") is not True:
            causes.append(v.forbidden("immutable", message))
        if data != old.get("data", {}):
            causes.append(v.forbidden("data", message))
        if binary != old.get("binaryData", {}):
            causes.append(v.forbidden("binaryData", message))
    return causes


def _validate_lease(obj: JsonObject, old: JsonObject | None) -> list[Cause]:
    spec: JsonObject = obj.get("spec", {})
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {duration}: must be greater than 0",
                "spec.leaseDurationSeconds",
            )
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        causes.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {transitions}: must be greater than or equal to 0",
                "spec.leaseTransitions",
            )
        )
    if spec.get("preferredHolder") and not spec.get("strategy"):
        causes.append(
            v.forbidden("spec.preferredHolder", "preferredHolder can only be set if strategy is set")
        )
    return causes


CONFIGMAPS = ResourceType("", "v1", "ConfigMap", "configmaps", CONFIGMAP_SCHEMA, _validate_configmap)
LEASES = ResourceType("coordination.k8s.io", "v1", "Lease", "leases", LEASE_SCHEMA, _validate_lease)

#: Served resources by (group, version, plural).
RESOURCES: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in (CONFIGMAPS, LEASES)
}
