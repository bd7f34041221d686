"""FileSystemJobResultStore files (Flink's FileSystemJobResultStoreFileOperationsTest) and Flink's JSON format."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from standby.config import Configuration
from standby.ha import (
    ApplicationStatus,
    CorruptHaDataError,
    FailureCause,
    FileSystemJobResultStore,
    JavaSerializedValue,
    JobID,
    JobResult,
    JobResultEntry,
    JobResultStoreError,
    decode_job_result_entry,
    encode_job_result_entry,
)
from standby.ha._java_serialization import decode_optional_failure, encode_optional_failure


def _result(**overrides: object) -> JobResult:
    values: dict[str, object] = {
        "job_id": JobID.generate(),
        "name": "wordcount",
        "application_status": ApplicationStatus.SUCCEEDED,
        "accumulator_results": {"records": 12345, "ratio": 0.5, "label": "done", "flag": True},
        "net_runtime_ms": 987,
        "start_time_ms": 1000,
        "end_time_ms": 1987,
    }
    values.update(overrides)
    return JobResult(**values)  # type: ignore[arg-type]


def test_from_configuration_uses_flink_layout(tmp_path: Path) -> None:
    config = Configuration(
        {"high-availability.storageDir": f"file://{tmp_path}", "high-availability.cluster-id": "/c1"}
    )
    store = FileSystemJobResultStore.from_configuration(config)
    assert store.base_path == f"file://{tmp_path}/job-result-store/c1"
    assert store.delete_on_commit is True
    custom = FileSystemJobResultStore.from_configuration(
        Configuration(
            {
                "high-availability.storageDir": str(tmp_path),
                "job-result-store.storage-path": str(tmp_path / "elsewhere"),
                "job-result-store.delete-on-commit": "false",
            }
        )
    )
    assert custom.base_path == f"file://{tmp_path}/elsewhere"
    assert custom.delete_on_commit is False


def test_file_name_predicates(tmp_path: Path) -> None:
    store = FileSystemJobResultStore(str(tmp_path))
    job_id = JobID.generate()
    assert store.dirty_path(job_id).rsplit("/", 1) == [str(tmp_path), f"{job_id}_DIRTY.json"]
    assert store.clean_path(job_id).rsplit("/", 1) == [str(tmp_path), f"{job_id}.json"]
    assert store.is_dirty_file("x_DIRTY.json")
    assert not store.is_dirty_file("test.json")
    assert store.is_clean_file("test.json")
    assert not store.is_clean_file("x_DIRTY.json")


async def test_base_dir_is_created_lazily(tmp_path: Path) -> None:
    base = tmp_path / "jrs"
    store = FileSystemJobResultStore(str(base))
    assert not base.exists()
    assert await store.get_dirty_results() == []
    assert base.is_dir()


async def test_dirty_file_content_and_clean_rename(tmp_path: Path) -> None:
    store = FileSystemJobResultStore(str(tmp_path), delete_on_commit=False)
    result = _result()
    await store.create_dirty_result(JobResultEntry(result))
    dirty = tmp_path / f"{result.job_id}_DIRTY.json"
    body = json.loads(dirty.read_text())
    assert body["version"] == 1
    assert set(body["result"]) == {
        "id",
        "name",
        "application-status",
        "accumulator-results",
        "net-runtime",
        "start-time",
        "end-time",
    }
    assert body["result"]["id"] == result.job_id
    assert body["result"]["application-status"] == "SUCCEEDED"
    await store.mark_result_as_clean(result.job_id)
    clean = tmp_path / f"{result.job_id}.json"
    assert not dirty.exists()
    content = clean.read_bytes()
    await store.mark_result_as_clean(result.job_id)  # idempotent, content unchanged
    assert clean.read_bytes() == content
    assert decode_job_result_entry(content).job_result == result


async def test_delete_on_commit_leaves_no_file(tmp_path: Path) -> None:
    store = FileSystemJobResultStore(str(tmp_path), delete_on_commit=True)
    result = _result()
    await store.create_dirty_result(JobResultEntry(result))
    await store.mark_result_as_clean(result.job_id)
    assert os.listdir(tmp_path) == []
    assert not await store.has_job_result_entry(result.job_id)


def test_round_trip_of_all_fields() -> None:
    result = _result(
        application_status=ApplicationStatus.FAILED,
        failure_cause=FailureCause(
            "java.lang.RuntimeException", "java.lang.RuntimeException: boom\n\tat x", "rO0ABQ=="
        ),
        accumulator_results={"big": 2**62, "neg": -5, "s": "ü€𝄞", "f": 1e-3},
    )
    decoded = decode_job_result_entry(encode_job_result_entry(JobResultEntry(result))).job_result
    assert decoded == result


def test_reads_a_file_written_by_flink() -> None:
    job_id = "a" * 32
    custom = base64.b64encode(b"\xac\xed\x00\x05sr\x00\x0bcom.example.X").decode()
    flink_body = {
        "result": {
            "id": job_id,
            "name": "Flink Streaming Job",
            "application-status": "CANCELED",
            "accumulator-results": {
                "count": base64.b64encode(encode_optional_failure(7)).decode(),
                # a user class we cannot decode: kept raw, reading does not fail
                "custom": custom,
                "garbage": "%%% not base64",
            },
            "net-runtime": 5000,
            "failure-cause": {"class": "x.Y", "stack-trace": "trace", "serialized-throwable": "AAEC"},
            "application-id": "b" * 32,
            "start-time": 10,
            "end-time": 5010,
        },
        "version": 1,
    }
    result = decode_job_result_entry(json.dumps(flink_body).encode(), "flink.json").job_result
    assert result.job_id == JobID(job_id)
    assert result.application_status is ApplicationStatus.CANCELED
    assert result.accumulator_results["count"] == 7
    assert result.accumulator_results["custom"] == JavaSerializedValue(custom)
    assert result.accumulator_results["garbage"] == JavaSerializedValue("%%% not base64")
    assert result.failure_cause == FailureCause("x.Y", "trace", "AAEC")
    # unreadable accumulators are written back verbatim
    again = json.loads(encode_job_result_entry(JobResultEntry(result)))
    assert again["result"]["accumulator-results"]["custom"] == custom


@pytest.mark.parametrize("data", [b"not json", b"{}", b'{"result": {"id": "nope"}}'])
def test_unreadable_file_raises_naming_the_source(data: bytes) -> None:
    with pytest.raises(CorruptHaDataError, match="some/path"):
        decode_job_result_entry(data, "some/path")


async def test_unreadable_dirty_file_fails_listing_naming_the_file(tmp_path: Path) -> None:
    store = FileSystemJobResultStore(str(tmp_path))
    bad = tmp_path / f"{JobID.generate()}_DIRTY.json"
    bad.write_text("{broken")
    with pytest.raises(CorruptHaDataError, match=bad.name):
        await store.get_dirty_results()


async def test_inaccessible_base_dir_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    store = FileSystemJobResultStore(str(blocker / "jrs"))
    with pytest.raises(JobResultStoreError, match="file-not-dir"):
        await store.get_dirty_results()


def test_java_serialization_round_trip() -> None:
    for value in (0, -1, 2**63 - 1, -(2**63), 1.25, float("inf"), True, False, "", "text \x00 𝄞"):
        assert decode_optional_failure(encode_optional_failure(value)) == value
