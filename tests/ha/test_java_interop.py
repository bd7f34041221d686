"""Accumulator bytes are exactly what the JDK writes and reads (checked with a real JVM when javac is present).

The JVM side uses a stand-in ``org.apache.flink.util.OptionalFailure`` with the same serialized form as Flink's
(serialVersionUID 1, ``transient T value``, ``Throwable failureCause``, writeObject that appends the value).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from standby.ha._java_serialization import decode_optional_failure, encode_optional_failure

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="no JDK"),
]

_OPTIONAL_FAILURE = """
package org.apache.flink.util;
import java.io.*;
public class OptionalFailure<T> implements Serializable {
    private static final long serialVersionUID = 1L;
    private transient T value;
    private Throwable failureCause;
    private OptionalFailure(T value, Throwable failureCause) { this.value = value; this.failureCause = failureCause; }
    public static <T> OptionalFailure<T> of(T value) { return new OptionalFailure<>(value, null); }
    public T get() { return value; }
    private void writeObject(ObjectOutputStream stream) throws IOException { stream.defaultWriteObject(); stream.writeObject(value); }
    @SuppressWarnings("unchecked")
    private void readObject(ObjectInputStream stream) throws IOException, ClassNotFoundException {
        stream.defaultReadObject(); value = (T) stream.readObject();
    }
}
"""

_PROBE = """
import java.io.*;
import java.util.Base64;
import org.apache.flink.util.OptionalFailure;
public class Probe {
    static String write(Object value) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) { out.writeObject(OptionalFailure.of(value)); }
        return Base64.getEncoder().encodeToString(bytes.toByteArray());
    }
    public static void main(String[] args) throws Exception {
        System.out.println(write(42L));
        System.out.println(write(-1.5d));
        System.out.println(write(Boolean.TRUE));
        System.out.println(write("h\\u00e9llo \\ud834\\udd1e"));
        System.out.println(write(7));
        for (String arg : args) {
            try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(Base64.getDecoder().decode(arg)))) {
                Object value = ((OptionalFailure<?>) in.readObject()).get();
                System.out.println(value.getClass().getName() + "=" + value);
            }
        }
    }
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("java")
    (root / "org/apache/flink/util").mkdir(parents=True)
    (root / "org/apache/flink/util/OptionalFailure.java").write_text(_OPTIONAL_FAILURE)
    (root / "Probe.java").write_text(_PROBE)
    subprocess.run(
        [
            "javac",
            "-nowarn",
            "-d",
            str(root),
            str(root / "Probe.java"),
            str(root / "org/apache/flink/util/OptionalFailure.java"),
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    return root


def test_jdk_and_standby_agree(probe: Path) -> None:
    ours = [base64.b64encode(encode_optional_failure(v)).decode() for v in (42, -1.5, True, "héllo 𝄞")]
    run = subprocess.run(
        ["java", "-cp", str(probe), "Probe", *ours], check=True, timeout=60, capture_output=True, text=True
    )
    lines = run.stdout.splitlines()
    jdk_written, jdk_read = lines[:5], lines[5:]
    # byte for byte what the JDK writes
    assert jdk_written[:4] == ours
    # and we read what the JDK writes (including Integer, which we never write)
    values = [decode_optional_failure(base64.b64decode(line)) for line in jdk_written]
    assert values == [42, -1.5, True, "héllo 𝄞", 7]
    # the JDK reads ours as the boxed types Flink expects
    assert jdk_read == [
        "java.lang.Long=42",
        "java.lang.Double=-1.5",
        "java.lang.Boolean=true",
        "java.lang.String=héllo 𝄞",
    ]
