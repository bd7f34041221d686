"""Just enough Java object serialization to exchange accumulator values with Flink's job result files.

Flink writes each accumulator of a ``JobResult`` as base64 of a Java-serialized ``SerializedValue`` holding an
``org.apache.flink.util.OptionalFailure``. We write ``OptionalFailure`` of ``java.lang.Long``, ``Double``,
``Boolean`` or ``String`` exactly as the JDK's ``ObjectOutputStream`` does, and read those back (plus ``Integer``,
``Short``, ``Byte``, ``Float``). Anything else (user classes, failures carrying a ``Throwable``) is not decoded:
``decode_optional_failure`` raises ``JavaDeserializationError`` and the caller keeps the raw bytes.

Stream grammar: Java Object Serialization Specification, chapter 6 (protocol version 2).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

STREAM_MAGIC = 0xACED
STREAM_VERSION = 5
TC_NULL = 0x70
TC_REFERENCE = 0x71
TC_CLASSDESC = 0x72
TC_OBJECT = 0x73
TC_STRING = 0x74
TC_ENDBLOCKDATA = 0x78
TC_BLOCKDATA = 0x77
TC_BLOCKDATALONG = 0x7A
TC_LONGSTRING = 0x7C
SC_WRITE_METHOD = 0x01
SC_SERIALIZABLE = 0x02
BASE_WIRE_HANDLE = 0x7E0000

OPTIONAL_FAILURE_CLASS = "org.apache.flink.util.OptionalFailure"

# (class name, serialVersionUID) of the JDK classes we write.
_NUMBER = ("java.lang.Number", -8742448824652078965)
_LONG = ("java.lang.Long", 4290774380558885855)
_DOUBLE = ("java.lang.Double", -9172774392245257468)
_BOOLEAN = ("java.lang.Boolean", -3665804199014368530)
_JAVA_LONG_MIN = -(2**63)
_JAVA_LONG_MAX = 2**63 - 1

_BOXED_FIELD = {
    "java.lang.Long": "J",
    "java.lang.Integer": "I",
    "java.lang.Short": "S",
    "java.lang.Byte": "B",
    "java.lang.Double": "D",
    "java.lang.Float": "F",
    "java.lang.Boolean": "Z",
}


class JavaDeserializationError(ValueError):
    """The bytes are not a Java serialization stream we can decode."""


# ---------------------------------------------------------------------------------------------------- writing


def _utf(text: str) -> bytes:
    data = _modified_utf8(text)
    if len(data) > 0xFFFF:
        raise ValueError("string too long for a short UTF")
    return struct.pack(">H", len(data)) + data


def _modified_utf8(text: str) -> bytes:
    """Java's modified UTF-8: NUL as two bytes, supplementary characters as surrogate pairs."""
    utf16 = text.encode("utf-16-be", "surrogatepass")
    out = bytearray()
    for (code,) in struct.iter_unpack(">H", utf16):
        if 0x01 <= code <= 0x7F:
            out.append(code)
        elif code <= 0x7FF:
            out += bytes((0xC0 | (code >> 6), 0x80 | (code & 0x3F)))
        else:
            out += bytes((0xE0 | (code >> 12), 0x80 | ((code >> 6) & 0x3F), 0x80 | (code & 0x3F)))
    return bytes(out)


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray(struct.pack(">HH", STREAM_MAGIC, STREAM_VERSION))

    def class_desc(
        self, name: str, suid: int, flags: int, fields: list[tuple[str, str, str | None]], write_super: bool
    ) -> None:
        """``fields``: (type code, name, class signature for object fields)."""
        self.out.append(TC_CLASSDESC)
        self.out += _utf(name)
        self.out += struct.pack(">qB", suid, flags)
        self.out += struct.pack(">H", len(fields))
        for code, field_name, signature in fields:
            self.out.append(ord(code))
            self.out += _utf(field_name)
            if signature is not None:
                self.out.append(TC_STRING)
                self.out += _utf(signature)
        self.out.append(TC_ENDBLOCKDATA)  # no class annotations
        if not write_super:
            self.out.append(TC_NULL)

    def number_superclass(self) -> None:
        self.class_desc(_NUMBER[0], _NUMBER[1], SC_SERIALIZABLE, [], write_super=False)

    def value(self, value: object) -> None:
        if isinstance(value, bool):
            self.out.append(TC_OBJECT)
            self.class_desc(
                _BOOLEAN[0], _BOOLEAN[1], SC_SERIALIZABLE, [("Z", "value", None)], write_super=False
            )
            self.out.append(1 if value else 0)
        elif isinstance(value, int):
            if not _JAVA_LONG_MIN <= value <= _JAVA_LONG_MAX:
                raise ValueError(f"{value} does not fit into a java.lang.Long")
            self.out.append(TC_OBJECT)
            self.class_desc(_LONG[0], _LONG[1], SC_SERIALIZABLE, [("J", "value", None)], write_super=True)
            self.number_superclass()
            self.out += struct.pack(">q", value)
        elif isinstance(value, float):
            self.out.append(TC_OBJECT)
            self.class_desc(_DOUBLE[0], _DOUBLE[1], SC_SERIALIZABLE, [("D", "value", None)], write_super=True)
            self.number_superclass()
            self.out += struct.pack(">d", value)
        elif isinstance(value, str):
            data = _modified_utf8(value)
            if len(data) <= 0xFFFF:
                self.out.append(TC_STRING)
                self.out += struct.pack(">H", len(data)) + data
            else:
                self.out.append(TC_LONGSTRING)
                self.out += struct.pack(">Q", len(data)) + data
        else:
            raise TypeError(f"cannot write a {type(value).__name__} as a Java object")


def encode_optional_failure(value: object) -> bytes:
    """``OptionalFailure.of(value)`` as the JDK serializes it; ``value`` is an int, float, bool or str."""
    writer = _Writer()
    writer.out.append(TC_OBJECT)
    # OptionalFailure: `transient T value`, `Throwable failureCause`, custom writeObject that writes the value.
    writer.class_desc(
        OPTIONAL_FAILURE_CLASS,
        1,
        SC_SERIALIZABLE | SC_WRITE_METHOD,
        [("L", "failureCause", "Ljava/lang/Throwable;")],
        write_super=False,
    )
    writer.out.append(TC_NULL)  # defaultWriteObject: failureCause = null
    writer.value(value)  # stream.writeObject(value)
    writer.out.append(TC_ENDBLOCKDATA)
    return bytes(writer.out)


# ---------------------------------------------------------------------------------------------------- reading


@dataclass
class _ClassDesc:
    name: str
    suid: int
    flags: int
    fields: list[tuple[str, str]] = field(default_factory=list)
    superclass: _ClassDesc | None = None


@dataclass
class JavaObject:
    """A decoded object: its class name and field values (of every class in its hierarchy)."""

    class_name: str
    fields: dict[str, Any]
    annotations: list[Any] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.handles: list[Any] = []

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise JavaDeserializationError("unexpected end of stream")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def utf(self, length: int) -> str:
        raw = self.take(length)
        try:
            # modified UTF-8 equals UTF-8 except for NUL and supplementary characters
            text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
            # join the surrogate pairs of supplementary characters
            return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be")
        except UnicodeError as e:
            raise JavaDeserializationError(f"bad modified UTF-8: {e}") from e

    def new_handle(self, obj: Any) -> int:
        self.handles.append(obj)
        return len(self.handles) - 1

    def reference(self) -> Any:
        handle = self.unpack(">i") - BASE_WIRE_HANDLE
        if not 0 <= handle < len(self.handles):
            raise JavaDeserializationError(f"dangling back reference {handle}")
        return self.handles[handle]

    def class_desc(self) -> _ClassDesc | None:
        tag = self.u8()
        if tag == TC_NULL:
            return None
        if tag == TC_REFERENCE:
            ref = self.reference()
            if not isinstance(ref, _ClassDesc):
                raise JavaDeserializationError("reference is not a class descriptor")
            return ref
        if tag != TC_CLASSDESC:
            raise JavaDeserializationError(f"unsupported class descriptor tag 0x{tag:02x}")
        name = self.utf(self.unpack(">H"))
        suid = self.unpack(">q")
        desc = _ClassDesc(name, suid, 0)
        self.new_handle(desc)
        desc.flags = self.u8()
        for _ in range(self.unpack(">H")):
            code = chr(self.u8())
            field_name = self.utf(self.unpack(">H"))
            if code in "L[":
                signature = self.content()
                if not isinstance(signature, str):
                    raise JavaDeserializationError("field signature is not a string")
            desc.fields.append((code, field_name))
        self.skip_annotations()
        desc.superclass = self.class_desc()
        return desc

    def skip_annotations(self) -> list[Any]:
        items: list[Any] = []
        while True:
            if self.data[self.pos : self.pos + 1] == bytes((TC_ENDBLOCKDATA,)):
                self.pos += 1
                return items
            items.append(self.content())

    def content(self) -> Any:
        tag = self.u8()
        if tag == TC_NULL:
            return None
        if tag == TC_REFERENCE:
            return self.reference()
        if tag == TC_STRING:
            text = self.utf(self.unpack(">H"))
            self.new_handle(text)
            return text
        if tag == TC_LONGSTRING:
            text = self.utf(self.unpack(">Q"))
            self.new_handle(text)
            return text
        if tag == TC_BLOCKDATA:
            return self.take(self.u8())
        if tag == TC_BLOCKDATALONG:
            return self.take(self.unpack(">I"))
        if tag == TC_OBJECT:
            return self.object()
        raise JavaDeserializationError(f"unsupported content tag 0x{tag:02x}")

    def object(self) -> JavaObject:
        desc = self.class_desc()
        if desc is None:
            raise JavaDeserializationError("object without class")
        obj = JavaObject(desc.name, {})
        self.new_handle(obj)
        chain: list[_ClassDesc] = []
        current: _ClassDesc | None = desc
        while current is not None:
            chain.append(current)
            current = current.superclass
        for cls in reversed(chain):  # superclass data first
            if not cls.flags & SC_SERIALIZABLE:
                raise JavaDeserializationError(f"class {cls.name} is not Serializable (externalizable?)")
            for code, field_name in cls.fields:
                obj.fields[field_name] = self.field_value(code)
            if cls.flags & SC_WRITE_METHOD:
                obj.annotations.extend(self.skip_annotations())
        return obj

    def field_value(self, code: str) -> Any:
        if code == "J":
            return self.unpack(">q")
        if code == "I":
            return self.unpack(">i")
        if code == "S":
            return self.unpack(">h")
        if code == "B":
            return self.unpack(">b")
        if code == "C":
            return chr(self.unpack(">H"))
        if code == "D":
            return self.unpack(">d")
        if code == "F":
            return self.unpack(">f")
        if code == "Z":
            return self.u8() != 0
        if code in "L[":
            return self.content()
        raise JavaDeserializationError(f"unknown field type code {code!r}")


def _to_python(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, JavaObject) and value.class_name in _BOXED_FIELD:
        return value.fields.get("value")
    raise JavaDeserializationError(f"cannot convert a {getattr(value, 'class_name', type(value).__name__)}")


def decode_optional_failure(data: bytes) -> Any:
    """The value of a serialized ``OptionalFailure`` of a boxed primitive or string."""
    reader = _Reader(data)
    if reader.unpack(">H") != STREAM_MAGIC or reader.unpack(">H") != STREAM_VERSION:
        raise JavaDeserializationError("not a Java serialization stream")
    root = reader.content()
    if not isinstance(root, JavaObject) or root.class_name != OPTIONAL_FAILURE_CLASS:
        return _to_python(root)
    if root.fields.get("failureCause") is not None:
        raise JavaDeserializationError("the accumulator holds a failure")
    if "value" in root.fields:  # OptionalFailure of Flink < 1.12: value was a plain field
        return _to_python(root.fields["value"])
    objects = [a for a in root.annotations if not isinstance(a, bytes)]
    if len(objects) != 1:
        raise JavaDeserializationError("unexpected custom data of OptionalFailure")
    return _to_python(objects[0])
