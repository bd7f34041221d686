"""Measure Apache Flink 2.3 JobManager failover (ZooKeeper HA) on this machine, for side-by-side comparison.

Starts a real Flink 2.3 standalone session cluster from the ``apache-flink`` PyPI distribution (isolated venv under
``benchmarks/.work/flink-venv``): a private ZooKeeper (unless one is given), three JobManagers (one leader, two
standbys) and one TaskManager with two slots. Submits ``CheckpointingJob`` (built here with ``javac``), then per
trial kills the leading JobManager and measures, from the kill:

* ``new_leader_s``      a new Dispatcher leader session is published in ZooKeeper
                        (``/flink/<cluster-id>/leader/dispatcher/connection_info`` carries a new session UUID),
* ``job_running_s``     the job is RUNNING on the new leader with every subtask RUNNING (REST ``GET /jobs/<id>``),
* ``checkpoint_s``      the first checkpoint completed after the kill is visible (REST ``/jobs/<id>/checkpoints``),
* ``recovery_overhead_s`` = ``job_running_s - new_leader_s``.

The killed JobManager is restarted as a standby before the next trial; its start-up (spawn -> REST answering,
-> joined the leader latch) and the resident memory of leader and standbys are recorded too.

Usage::

    uv run python benchmarks/flink/run_flink_failover.py --session-timeout 4s --trials 10 --kill SIGKILL --out X.json

Importable: ``run_flink_failover(session_timeout_s, kill_signal, trials, work_dir, zk_connect=None) -> dict``.
Stdlib + httpx + psutil + kazoo (all in the project env). Loopback only; every wait is bounded; every process
started here is killed on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

log = logging.getLogger("flink-bench")

HERE = Path(__file__).resolve().parent
DEFAULT_WORK_DIR = HERE.parent / ".work"
FLINK_REQUIREMENT = "apache-flink==2.3.*"
JOB_SOURCE = HERE / "CheckpointingJob.java"
JOB_MAIN_CLASS = "standby.bench.CheckpointingJob"
ZOOKEEPER_CLASSPATH = os.environ.get("ZOOKEEPER_CLASSPATH", "/usr/share/java/zookeeper.jar")

NUM_JOBMANAGERS = 3
PARALLELISM = 2
TASK_SLOTS = 2
CHECKPOINT_MS = 300
SOURCE_RATE = 2000
ZK_TICK_MS = 200  # session expiry is checked per tick: the expiry lands within one tick after the timeout
POLL_S = 0.02  # REST poll interval
ZK_POLL_S = 0.01  # ZooKeeper poll interval (one getData round trip on loopback)
HTTP_TIMEOUT_S = 2.0
MIB = 1024 * 1024


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message names what and where to look."""


# ---------------------------------------------------------------------------------------------- small utilities


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago (the tiny reuse race is acceptable here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_duration_s(text: str) -> float:
    """Parse ``4s``, ``4000ms``, ``2.5`` (seconds)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*", text)
    if not m:
        raise BenchError(f"cannot parse duration {text!r}: use e.g. 4s, 4000ms or 4")
    value = float(m.group(1))
    return value / 1000.0 if m.group(2) == "ms" else value


def wait_until(what: str, predicate: Callable[[], Any], timeout_s: float, interval_s: float = POLL_S) -> Any:
    """Poll ``predicate`` until it returns neither None nor False (0 counts as an answer); bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def summarize(values: list[float]) -> dict[str, float | int | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "mean": None}
    return {
        "n": len(vals),
        "median": round(statistics.median(vals), 4),
        "min": round(min(vals), 4),
        "max": round(max(vals), 4),
        "mean": round(statistics.fmean(vals), 4),
    }


def java_version() -> str:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
    return (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else "unknown"


# ---------------------------------------------------------------------------------------------- distribution


@dataclass(frozen=True)
class FlinkDist:
    home: Path  # the directory holding bin/, lib/, conf/ (``site-packages/pyflink`` for the PyPI package)
    version: str

    @property
    def lib(self) -> Path:
        return self.home / "lib"

    @property
    def bin(self) -> Path:
        return self.home / "bin"

    @property
    def conf(self) -> Path:
        return self.home / "conf"


def _find_pyflink_home(venv: Path) -> Path | None:
    for cand in sorted(venv.glob("lib/python3*/site-packages/pyflink")):
        if any(cand.glob("lib/flink-dist-*.jar")) and (cand / "bin" / "jobmanager.sh").exists():
            return cand
    return None


def ensure_flink_dist(work_dir: Path) -> FlinkDist:
    """Locate (or install into ``<work_dir>/flink-venv``) the Flink 2.3 distribution shipped by ``apache-flink``.

    ``FLINK_HOME`` in the environment overrides this (any unpacked Flink 2.3 distribution).
    """
    if os.environ.get("FLINK_HOME"):
        home = Path(os.environ["FLINK_HOME"])
    else:
        venv = work_dir / "flink-venv"
        found = _find_pyflink_home(venv)
        if found is None:
            log.info("installing %s into %s (one-off)", FLINK_REQUIREMENT, venv)
            uv = shutil.which("uv")
            if uv:
                subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True, timeout=600)
                subprocess.run(
                    [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), FLINK_REQUIREMENT],
                    check=True,
                    timeout=1800,
                )
            else:
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
                subprocess.run(
                    [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", FLINK_REQUIREMENT],
                    check=True,
                    timeout=1800,
                )
            found = _find_pyflink_home(venv)
            if found is None:
                raise BenchError(
                    f"{FLINK_REQUIREMENT} installed into {venv} but no pyflink/lib/flink-dist-*.jar found"
                )
        home = found
    dist_jars = sorted(home.glob("lib/flink-dist-*.jar"))
    if not dist_jars:
        raise BenchError(f"no lib/flink-dist-*.jar under {home}: set FLINK_HOME to a Flink 2.3 distribution")
    version = dist_jars[0].name.removeprefix("flink-dist-").removesuffix(".jar")
    if not version.startswith("2.3"):
        raise BenchError(f"Flink {version} found at {home}, the benchmark is for 2.3.x")
    for script in home.glob("bin/*.sh"):  # wheels do not always keep the executable bit
        script.chmod(script.stat().st_mode | 0o755)
    if (home / "bin" / "flink").exists():
        (home / "bin" / "flink").chmod(0o755)
    return FlinkDist(home=home, version=version)


def build_job_jar(dist: FlinkDist, work_dir: Path) -> Path:
    """Compile CheckpointingJob.java against the distribution's jars into ``<work_dir>/job/checkpointing-job.jar``."""
    out_dir = work_dir / "job"
    jar_path = out_dir / "checkpointing-job.jar"
    if jar_path.exists() and jar_path.stat().st_mtime >= JOB_SOURCE.stat().st_mtime:
        return jar_path
    classes = out_dir / "classes"
    shutil.rmtree(classes, ignore_errors=True)
    classes.mkdir(parents=True)
    javac = shutil.which("javac")
    if javac is None:
        raise BenchError(
            "javac not found: install a JDK 17 (Debian: apt-get install openjdk-17-jdk-headless)"
        )
    proc = subprocess.run(
        [javac, "--release", "17", "-d", str(classes), "-cp", str(dist.lib / "*"), str(JOB_SOURCE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"javac failed for {JOB_SOURCE}:\n{proc.stderr}")
    tmp = jar_path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nMain-Class: {JOB_MAIN_CLASS}\n\n")
        for f in sorted(classes.rglob("*.class")):
            zf.write(f, f.relative_to(classes).as_posix())
    tmp.replace(jar_path)
    return jar_path


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    started_mono: float
    log_dir: Path
    rest_port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_mib(self) -> float | None:
        try:
            return psutil.Process(self.pid).memory_info().rss / MIB
        except psutil.Error:
            return None


class ProcessGroup:
    """Owns every process this harness starts; ``close()`` kills them (and their children) by pid."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def spawn(
        self, name: str, argv: list[str], log_dir: Path, env: dict[str, str], rest_port: int | None = None
    ) -> Proc:
        log_dir.mkdir(parents=True, exist_ok=True)
        out = (log_dir / f"{name}.out").open("ab")
        t = time.monotonic()
        popen = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        out.close()
        p = Proc(name=name, popen=popen, started_mono=t, log_dir=log_dir, rest_port=rest_port)
        self.procs.append(p)
        return p

    @staticmethod
    def kill(p: Proc, sig: int = signal.SIGKILL, wait_s: float = 30.0) -> None:
        if not p.alive():
            return
        try:
            children = psutil.Process(p.pid).children(recursive=True)
        except psutil.Error:
            children = []
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, sig)
        try:
            p.popen.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.popen.wait(timeout=10)
        for c in children:
            with contextlib.suppress(psutil.Error):
                c.kill()

    def close(self) -> None:
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                self.kill(p, signal.SIGKILL, wait_s=10)
        self.procs.clear()


# ---------------------------------------------------------------------------------------------- ZooKeeper


def start_zookeeper(group: ProcessGroup, run_dir: Path) -> str:
    """A private standalone ZooKeeper on a loopback ephemeral port; returns ``host:port``.

    min/max session timeout bracket the 2 s and 4 s Flink asks for so they are negotiated unchanged.
    """
    zk_dir = run_dir / "zookeeper"
    (zk_dir / "data").mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = zk_dir / "zoo.cfg"
    cfg.write_text(
        "\n".join(
            [
                f"tickTime={ZK_TICK_MS}",
                "minSessionTimeout=1000",
                "maxSessionTimeout=60000",
                f"dataDir={zk_dir / 'data'}",
                f"clientPort={port}",
                "clientPortAddress=127.0.0.1",
                "admin.enableServer=false",
                "4lw.commands.whitelist=ruok,srvr,stat",
                "maxClientCnxns=0",
                "",
            ]
        )
    )
    java = shutil.which("java") or "java"
    group.spawn(
        "zookeeper",
        [
            java,
            "-Xmx256m",
            "-cp",
            ZOOKEEPER_CLASSPATH,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(cfg),
        ],
        zk_dir,
        dict(os.environ),
    )

    def ruok() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.sendall(b"ruok")
                return s.recv(16) == b"imok"
        except OSError:
            return False

    wait_until(f"ZooKeeper on 127.0.0.1:{port} (log {zk_dir}/zookeeper.out)", ruok, 60, 0.1)
    return f"127.0.0.1:{port}"


def parse_leader_info(data: bytes | None) -> tuple[str, str] | None:
    """Decode Flink's connection_info znode: Java serialization of ``writeUTF(address); writeObject(UUID)``."""
    if not data or len(data) < 24 or data[:4] != b"\xac\xed\x00\x05":
        return None
    if data[4] == 0x77:  # short block-data header
        off = 6
    elif data[4] == 0x7A:  # long block-data header
        off = 9
    else:
        return None
    (n,) = struct.unpack(">H", data[off : off + 2])
    address = data[off + 2 : off + 2 + n].decode("utf-8", "replace")
    # UUID fields are serialized in name order: leastSigBits, then mostSigBits.
    lsb, msb = struct.unpack(">qq", data[-16:])
    session = uuid.UUID(int=((msb & (2**64 - 1)) << 64) | (lsb & (2**64 - 1)))
    return address, str(session)


# ---------------------------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    dist: FlinkDist
    run_dir: Path
    zk_connect: str
    cluster_id: str
    session_timeout_s: float
    group: ProcessGroup
    zk: KazooClient
    http: httpx.Client
    jms: dict[int, Proc] = field(default_factory=dict)
    tm: Proc | None = None
    job_id: str | None = None
    starts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def conf_dir(self) -> Path:
        return self.run_dir / "conf"

    @property
    def zk_base(self) -> str:
        return f"/flink/{self.cluster_id}"

    def write_conf(self) -> None:
        """config.yaml (flat keys) plus the distribution's logging configs."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for f in self.dist.conf.glob("log4j*.properties"):
            shutil.copy(f, self.conf_dir / f.name)
        for f in self.dist.conf.glob("logback*.xml"):
            shutil.copy(f, self.conf_dir / f.name)
        java_opts = ""
        default_cfg = (self.dist.conf / "config.yaml").read_text()
        m = re.search(r"^\s*all:\s*(--add-exports.*)$", default_cfg, re.MULTILINE)
        if m:  # the JDK 17 module opens Flink needs
            java_opts = m.group(1).strip()
        ms = round(self.session_timeout_s * 1000)
        settings: dict[str, Any] = {
            "env.java.opts.all": java_opts,
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.memory.process.size": "1600m",
            "jobmanager.execution.failover-strategy": "region",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": TASK_SLOTS,
            "taskmanager.memory.process.size": "1728m",
            "parallelism.default": PARALLELISM,
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "blob.server.port": "0",
            "high-availability.type": "zookeeper",
            "high-availability.zookeeper.quorum": self.zk_connect,
            "high-availability.zookeeper.path.root": "/flink",
            "high-availability.cluster-id": f"/{self.cluster_id}",
            "high-availability.storageDir": (self.run_dir / "ha").as_uri(),
            "high-availability.zookeeper.client.session-timeout": f"{ms} ms",
            "high-availability.jobmanager.port": "0",
            "execution.checkpointing.dir": (self.run_dir / "checkpoints").as_uri(),
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": 1000,
            "restart-strategy.fixed-delay.delay": "200 ms",
            # REST serves job details and checkpoint statistics from a cache whose TTL is the web refresh
            # interval (default 3 s); without this the polled times would lag Flink's real state by up to 3 s.
            "web.refresh-interval": "50 ms",
        }
        lines = [f"{k}: {json.dumps(v)}" for k, v in settings.items()]
        (self.conf_dir / "config.yaml").write_text("\n".join(lines) + "\n")

    def _env(self, proc_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FLINK_CONF_DIR": str(self.conf_dir),
                "FLINK_LOG_DIR": str(proc_dir / "log"),
                "FLINK_PID_DIR": str(proc_dir),
            }
        )
        env.pop("FLINK_HOME", None)  # bin/config.sh derives it from its own location
        return env

    def start_jm(self, index: int) -> Proc:
        """``bin/jobmanager.sh start-foreground`` (execs into the JVM, so the pid is the JobManager's)."""
        proc_dir = self.run_dir / f"jm{index}"
        tmp = proc_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [
            str(self.dist.bin / "jobmanager.sh"),
            "start-foreground",
            "-D",
            f"rest.port={port}",
            "-D",
            f"io.tmp.dirs={tmp}",
            "-D",
            f"web.tmpdir={tmp}",
        ]
        p = self.group.spawn(f"jm{index}", argv, proc_dir, self._env(proc_dir), rest_port=port)
        self.jms[index] = p
        return p

    def start_tm(self) -> Proc:
        proc_dir = self.run_dir / "tm"
        tmp = proc_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        argv = [str(self.dist.bin / "taskmanager.sh"), "start-foreground", "-D", f"io.tmp.dirs={tmp}"]
        self.tm = self.group.spawn("tm", argv, proc_dir, self._env(proc_dir))
        return self.tm

    # -- observation -------------------------------------------------------------------------------------------

    def rest(self, port: int, path: str) -> httpx.Response | None:
        try:
            return self.http.get(f"http://127.0.0.1:{port}{path}")
        except httpx.HTTPError:
            return None

    def leader_info(self, component: str) -> tuple[str, str] | None:
        try:
            data, _ = self.zk.get(f"{self.zk_base}/leader/{component}/connection_info")
        except NoNodeError:
            return None
        return parse_leader_info(data)

    def latch_count(self) -> int:
        try:
            return len(self.zk.get_children(f"{self.zk_base}/leader/latch"))
        except NoNodeError:
            return 0

    def leader_jm(self) -> int | None:
        """Index of the JobManager whose REST endpoint is the published rest_server leader."""
        info = self.leader_info("rest_server")
        if info is None:
            return None
        m = re.search(r":(\d+)/?$", info[0])
        if not m:
            return None
        port = int(m.group(1))
        for i, p in self.jms.items():
            if p.rest_port == port and p.alive():
                return i
        return None

    def wait_jm_started(self, p: Proc, expect_latch: int, timeout_s: float = 180) -> dict[str, Any]:
        """Time spawn -> REST answers (any HTTP status) -> REST 200 on /overview -> latch node registered."""
        rec: dict[str, Any] = {"jm": p.name}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not p.alive():
                raise BenchError(
                    f"{p.name} exited with {p.popen.returncode}: see {p.log_dir}/log and {p.name}.out"
                )
            assert p.rest_port is not None
            r = self.rest(p.rest_port, "/overview")
            now = time.monotonic()
            if r is not None and "rest_any_s" not in rec:
                rec["rest_any_s"] = round(now - p.started_mono, 4)
            if r is not None and r.status_code == 200 and "rest_ok_s" not in rec:
                rec["rest_ok_s"] = round(now - p.started_mono, 4)
            if "latch_s" not in rec and self.latch_count() >= expect_latch:
                rec["latch_s"] = round(now - p.started_mono, 4)
            if {"rest_ok_s", "latch_s"} <= rec.keys():
                self.starts.append(rec)
                return rec
            time.sleep(POLL_S)
        raise BenchError(f"{p.name} not ready after {timeout_s:.0f} s ({rec}): see {p.log_dir}/log")

    def job_detail(self, port: int) -> dict[str, Any] | None:
        assert self.job_id is not None
        r = self.rest(port, f"/jobs/{self.job_id}")
        if r is None or r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        return body

    def all_running(self, port: int) -> bool:
        d = self.job_detail(port)
        if d is None or d.get("state") != "RUNNING" or not d.get("vertices"):
            return False
        return all(v.get("tasks", {}).get("RUNNING", 0) == v.get("parallelism") for v in d["vertices"])

    def checkpoints(self, port: int) -> dict[str, Any] | None:
        assert self.job_id is not None
        r = self.rest(port, f"/jobs/{self.job_id}/checkpoints")
        if r is None or r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        return body

    def completed_count(self, port: int) -> int:
        c = self.checkpoints(port)
        return int(c["counts"]["completed"]) if c else -1

    def submit_job(self, port: int, jar: Path) -> str:
        with jar.open("rb") as fh:
            r = self.http.post(
                f"http://127.0.0.1:{port}/jars/upload",
                files={"jarfile": (jar.name, fh, "application/x-java-archive")},
                timeout=60,
            )
        if r.status_code != 200:
            raise BenchError(f"jar upload to :{port} failed: {r.status_code} {r.text[:500]}")
        jar_id = r.json()["filename"].rsplit("/", 1)[-1]
        r = self.http.post(
            f"http://127.0.0.1:{port}/jars/{jar_id}/run",
            json={
                "entryClass": JOB_MAIN_CLASS,
                "programArgsList": ["--checkpoint-ms", str(CHECKPOINT_MS), "--rate", str(SOURCE_RATE)],
                "parallelism": PARALLELISM,
            },
            timeout=120,
        )
        if r.status_code != 200:
            raise BenchError(f"job run on :{port} failed: {r.status_code} {r.text[:2000]}")
        self.job_id = str(r.json()["jobid"])
        return self.job_id

    def wait_steady(self, port: int, new_checkpoints: int = 3, timeout_s: float = 180) -> None:
        """Job fully running and ``new_checkpoints`` more checkpoints completed on the leader at ``port``."""
        wait_until("job RUNNING with all subtasks RUNNING", lambda: self.all_running(port), timeout_s)
        base = wait_until("checkpoint statistics", lambda: self.checkpoints(port), timeout_s)
        start = int(base["counts"]["completed"])
        wait_until(
            f"{new_checkpoints} completed checkpoints",
            lambda: self.completed_count(port) >= start + new_checkpoints,
            timeout_s,
            0.05,
        )


# ---------------------------------------------------------------------------------------------- one trial

_LOG_TS = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) ")
_ATTEMPT_RUNNING = re.compile(
    r"\(([0-9a-f]{32}_[0-9a-f]{32}_\d+_\d+)\) switched from INITIALIZING to RUNNING"
)


def _log_lines(log_dir: Path) -> Iterator[tuple[float, str]]:
    """(epoch seconds, line) of the current log file(s) of one Flink process (rotated ``*.log.N`` skipped)."""
    for f in sorted(log_dir.glob("*.log")):
        with f.open(errors="replace") as fh:
            for line in fh:
                m = _LOG_TS.match(line)
                if m:
                    yield _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp(), line


def log_times(
    log_dir: Path, session: str, subtasks: int, checkpoint_id: int | None
) -> dict[str, float | None]:
    """Flink's own view of a failover, from the new leader's log (ms timestamps, same clock as ours).

    Independent of REST caching and of our poll interval: ``grant`` = first "granted leadership" line with the
    new session id; ``all_running`` = the moment the ``subtasks``-th distinct execution attempt switched
    INITIALIZING -> RUNNING after the grant; ``checkpoint`` = "Completed checkpoint <id>".
    """
    grant: float | None = None
    running: set[str] = set()
    all_running: float | None = None
    checkpoint: float | None = None
    for ts, line in _log_lines(log_dir):
        if grant is None:
            if session in line and "granted leadership" in line:
                grant = ts
            continue
        if all_running is None:
            m = _ATTEMPT_RUNNING.search(line)
            if m:
                running.add(m.group(1))
                if len(running) >= subtasks:
                    all_running = ts
        if checkpoint_id is not None and f"Completed checkpoint {checkpoint_id} for job" in line:
            checkpoint = ts
            break
    return {"grant": grant, "all_running": all_running, "checkpoint": checkpoint}


def run_trial(c: Cluster, sig: int, trial: int) -> dict[str, Any]:
    leader = wait_until("a leading JobManager", c.leader_jm, 60)
    old = c.jms[leader]
    assert old.rest_port is not None
    old_dispatcher = c.leader_info("dispatcher")
    old_rest = c.leader_info("rest_server")
    if old_dispatcher is None or old_rest is None:
        raise BenchError(f"no leader information under {c.zk_base}/leader before trial {trial}")
    rss_leader = old.rss_mib()
    rss_standby = [p.rss_mib() for i, p in c.jms.items() if i != leader]
    pre = c.checkpoints(old.rest_port)
    pre_id = pre["latest"]["completed"]["id"] if pre and pre["latest"].get("completed") else None
    rec: dict[str, Any] = {
        "trial": trial,
        "killed_jm": old.name,
        "killed_pid": old.pid,
        "leader_rss_mib": round(rss_leader, 1) if rss_leader else None,
        "standby_rss_mib": [round(x, 1) for x in rss_standby if x],
        "pre_kill_checkpoint_id": pre_id,
    }

    # -- kill --------------------------------------------------------------------------------------------------
    t0 = time.monotonic()
    wall0 = time.time()
    os.kill(old.pid, sig)
    limit = max(60.0, 10 * c.session_timeout_s)

    # (a) new leader published in ZooKeeper. Flink grants one fresh session UUID per leadership period to all
    # components of the winning process; rest_server and resource_manager confirm at once, the dispatcher only
    # after its leader process has recovered the persisted job graphs, so it is recorded separately.
    components = ("rest_server", "resource_manager", "dispatcher")
    before = {comp: c.leader_info(comp) for comp in components}
    before["rest_server"], before["dispatcher"] = old_rest, old_dispatcher
    seen: dict[str, float] = {}
    gone: dict[str, float] = {}
    infos: dict[str, tuple[str, str]] = {}
    deadline = t0 + limit
    while time.monotonic() < deadline and len(seen) < len(components):
        for comp in components:
            if comp in seen:
                continue
            info = c.leader_info(comp)
            now = time.monotonic()
            prev = before[comp]
            if info is None or prev is None or info[1] != prev[1]:
                gone.setdefault(comp, now - t0)
            if info is not None and (prev is None or info[1] != prev[1]):
                seen[comp] = now - t0
                infos[comp] = info
        time.sleep(ZK_POLL_S)
    if len(seen) < len(components):
        raise BenchError(
            f"trial {trial}: no new leader within {limit:.0f} s after killing {old.name} ({seen})"
        )
    rec["old_leader_info_gone_s"] = round(min(gone.values()), 4)
    rec["new_leader_s"] = round(min(seen.values()), 4)
    for comp in components:
        rec[f"{comp}_leader_s"] = round(seen[comp], 4)
    new_rest = infos["rest_server"]
    new_session = new_rest[1]
    rec["new_leader_session_id"] = new_session
    m = re.search(r":(\d+)/?$", new_rest[0])
    new_port = int(m.group(1)) if m else -1
    new_leader = next((i for i, p in c.jms.items() if p.rest_port == new_port), None)
    if new_leader is None or new_leader == leader:
        raise BenchError(f"trial {trial}: rest_server leader {new_rest[0]} is not a surviving JobManager")
    rec["new_leader_jm"] = c.jms[new_leader].name

    # (b) job RUNNING again, every subtask RUNNING, as reported by the new leader.
    states: list[str] = []
    while time.monotonic() < deadline:
        d = c.job_detail(new_port)
        now = time.monotonic()
        if d is not None:
            st = str(d.get("state"))
            if not states or states[-1] != st:
                states.append(st)
            if (
                st == "RUNNING"
                and d.get("vertices")
                and all(v.get("tasks", {}).get("RUNNING", 0) == v.get("parallelism") for v in d["vertices"])
            ):
                rec["job_running_s"] = round(now - t0, 4)
                break
        time.sleep(POLL_S)
    else:
        raise BenchError(f"trial {trial}: job not RUNNING on {c.jms[new_leader].name} within {limit:.0f} s")
    rec["job_states_seen"] = states

    # (c) first checkpoint completed after the kill (the new JobMaster's statistics start empty; the ack
    # timestamp check also rules out a checkpoint the old leader completed just before dying).
    while time.monotonic() < deadline:
        cp = c.checkpoints(new_port)
        now = time.monotonic()
        latest = cp["latest"] if cp else None
        done = latest.get("completed") if latest else None
        if done and (pre_id is None or done["id"] > pre_id) and done["latest_ack_timestamp"] >= wall0 * 1000:
            rec["checkpoint_s"] = round(now - t0, 4)
            rec["checkpoint_flink_ack_s"] = round(done["latest_ack_timestamp"] / 1000 - wall0, 4)
            rec["new_checkpoint_id"] = done["id"]
            restored = latest.get("restored") if latest else None
            rec["restored_checkpoint_id"] = restored["id"] if restored else None
            break
        time.sleep(POLL_S)
    else:
        raise BenchError(f"trial {trial}: no new completed checkpoint within {limit:.0f} s")
    rec["recovery_overhead_s"] = round(rec["job_running_s"] - rec["new_leader_s"], 4)
    subtasks = sum(int(v["parallelism"]) for v in (c.job_detail(new_port) or {}).get("vertices", []))
    logged = log_times(c.jms[new_leader].log_dir / "log", new_session, subtasks, rec.get("new_checkpoint_id"))
    for key, ts in logged.items():
        rec[f"log_{key}_s"] = round(ts - wall0, 4) if ts is not None else None
    rec["loadavg_1m"] = round(os.getloadavg()[0], 2)

    # -- restore three JobManagers: restart the killed one as a standby ------------------------------------------
    old.popen.wait(timeout=60)
    rec["killed_exit_code"] = old.popen.returncode
    wait_until(
        "dead JobManager's latch node to disappear", lambda: c.latch_count() == NUM_JOBMANAGERS - 1, limit
    )
    idx = next(i for i, p in c.jms.items() if p is old)
    fresh = c.start_jm(idx)
    start = c.wait_jm_started(fresh, expect_latch=NUM_JOBMANAGERS)
    rec["restart"] = start
    c.wait_steady(new_port)
    rss_fresh = fresh.rss_mib()
    rec["restarted_standby_rss_mib"] = round(rss_fresh, 1) if rss_fresh else None
    return rec


# ---------------------------------------------------------------------------------------------- entry point


SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}


def run_flink_failover(
    session_timeout_s: float,
    kill_signal: str,
    trials: int,
    work_dir: Path,
    zk_connect: str | None = None,
) -> dict[str, Any]:
    """Start ZK (unless ``zk_connect``), 3 JMs + 1 TM, submit the job, run ``trials`` leader kills; return results."""
    sig_name = kill_signal.upper() if kill_signal.upper().startswith("SIG") else "SIG" + kill_signal.upper()
    if sig_name not in SIGNALS:
        raise BenchError(f"kill signal {kill_signal!r} not supported: use SIGKILL or SIGTERM")
    sig = SIGNALS[sig_name]
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    dist = ensure_flink_dist(work_dir)
    jar = build_job_jar(dist, work_dir)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    cluster_id = f"bench-{stamp}-{uuid.uuid4().hex[:6]}"
    run_dir = work_dir / "flink-runs" / cluster_id
    run_dir.mkdir(parents=True)

    group = ProcessGroup()
    zk: KazooClient | None = None
    http = httpx.Client(timeout=HTTP_TIMEOUT_S)
    t_setup = time.monotonic()
    load_at_start = os.getloadavg()
    try:
        own_zk = zk_connect is None
        connect = start_zookeeper(group, run_dir) if zk_connect is None else zk_connect
        zk = KazooClient(hosts=connect, timeout=10.0)
        zk.start(timeout=30)
        c = Cluster(
            dist=dist,
            run_dir=run_dir,
            zk_connect=connect,
            cluster_id=cluster_id,
            session_timeout_s=session_timeout_s,
            group=group,
            zk=zk,
            http=http,
        )
        c.write_conf()
        log.info("run dir %s, ZooKeeper %s", run_dir, connect)
        # Leader first, then the standbys one by one: start-up times are not skewed by concurrent JVM starts.
        for i in range(NUM_JOBMANAGERS):
            p = c.start_jm(i)
            rec = c.wait_jm_started(p, expect_latch=i + 1)
            log.info("%s ready: %s", p.name, rec)
        first_leader = wait_until("first leader", c.leader_jm, 60)
        c.start_tm()
        leader_port = c.jms[first_leader].rest_port
        assert leader_port is not None

        def tm_registered() -> bool:
            r = c.rest(leader_port, "/overview")
            return r is not None and r.status_code == 200 and r.json().get("slots-total", 0) >= TASK_SLOTS

        wait_until("TaskManager registration", tm_registered, 180)
        job_id = c.submit_job(leader_port, jar)
        log.info("job %s submitted", job_id)
        c.wait_steady(leader_port)
        setup_s = time.monotonic() - t_setup
        log.info("cluster steady after %.1f s", setup_s)

        results: list[dict[str, Any]] = []
        for t in range(trials):
            r = run_trial(c, sig, t)
            log.info(
                "trial %d: leader %.3f s, running %.3f s, checkpoint %.3f s, overhead %.3f s",
                t,
                r["new_leader_s"],
                r["job_running_s"],
                r["checkpoint_s"],
                r["recovery_overhead_s"],
            )
            results.append(r)

        # Cancel so Flink removes the job's HA data, then stop everything.
        final_leader = c.leader_jm()
        if final_leader is not None:
            with contextlib.suppress(httpx.HTTPError):
                c.http.patch(f"http://127.0.0.1:{c.jms[final_leader].rest_port}/jobs/{job_id}?mode=cancel")

        def col(key: str) -> list[float]:
            return [r[key] for r in results if r.get(key) is not None]

        initial = c.starts[:NUM_JOBMANAGERS]
        restarts = [r["restart"] for r in results]
        summary = {
            k: summarize(col(k))
            for k in (
                "new_leader_s",
                "log_grant_s",
                "log_all_running_s",
                "log_checkpoint_s",
                "old_leader_info_gone_s",
                "rest_server_leader_s",
                "resource_manager_leader_s",
                "dispatcher_leader_s",
                "job_running_s",
                "checkpoint_s",
                "checkpoint_flink_ack_s",
                "recovery_overhead_s",
                "leader_rss_mib",
                "restarted_standby_rss_mib",
                "loadavg_1m",
            )
        }
        summary["standby_rss_mib"] = summarize([x for r in results for x in r["standby_rss_mib"]])
        # Initial starts are sequential on an otherwise idle cluster; restarts happen while the job runs.
        summary["jm_start_to_rest_any_s"] = summarize([s["rest_any_s"] for s in initial])
        summary["jm_start_to_rest_ok_s"] = summarize([s["rest_ok_s"] for s in initial])
        summary["restart_to_rest_ok_s"] = summarize([s["rest_ok_s"] for s in restarts])
        summary["restart_to_latch_s"] = summarize([s["latch_s"] for s in restarts])
        return {
            "system": "flink",
            "config": {
                "flink_version": dist.version,
                "flink_home": str(dist.home),
                "java": java_version(),
                "zookeeper": "own standalone ZooKeeper 3.8 (Debian)" if own_zk else f"external {connect}",
                "zookeeper_tick_ms": ZK_TICK_MS if own_zk else None,
                "session_timeout_s": session_timeout_s,
                "kill_signal": sig_name,
                "trials": trials,
                "jobmanagers": NUM_JOBMANAGERS,
                "taskmanagers": 1,
                "task_slots": TASK_SLOTS,
                "parallelism": PARALLELISM,
                "checkpoint_interval_ms": CHECKPOINT_MS,
                "source_rate_per_s": SOURCE_RATE,
                "rest_poll_s": POLL_S,
                "zk_poll_s": ZK_POLL_S,
                "jobmanager_memory_process_size": "1600m",
                "host": platform.node(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "date": _dt.datetime.now().isoformat(timespec="seconds"),
                "run_dir": str(run_dir),
                "setup_s": round(setup_s, 2),
                "loadavg_at_start": [round(x, 2) for x in load_at_start],
            },
            "summary": summary,
            "jm_starts": {"initial": initial, "restarts": restarts},
            "trials": results,
        }
    finally:
        http.close()
        # Flink processes first (the ZooKeeper process, if ours, is the first one started and is killed last).
        for p in reversed(group.procs[1:] if zk_connect is None else group.procs):
            with contextlib.suppress(Exception):
                group.kill(p, signal.SIGKILL, wait_s=10)
        if zk is not None:
            if zk_connect is not None:  # shared ZooKeeper: leave nothing behind
                with contextlib.suppress(Exception):
                    zk.delete(f"/flink/{cluster_id}", recursive=True)
            with contextlib.suppress(Exception):
                zk.stop()
                zk.close()
        group.close()


@contextlib.contextmanager
def _signals_to_exit() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into SystemExit so ``finally`` blocks kill the cluster."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--session-timeout", default="4s", help="ZK session timeout(s), comma-separated: 2s,4s")
    ap.add_argument("--kill", default="SIGKILL", help="signal(s), comma-separated: SIGKILL,SIGTERM")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    ap.add_argument(
        "--zk-connect", default=None, help="use this ZooKeeper (host:port) instead of starting one"
    )
    ap.add_argument("--out", type=Path, default=None, help="write JSON here (default: stdout)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    runs = []
    with _signals_to_exit():
        for timeout in [parse_duration_s(x) for x in args.session_timeout.split(",")]:
            for kill in args.kill.split(","):
                log.info(
                    "=== Flink failover: session timeout %.1f s, %s, %d trials", timeout, kill, args.trials
                )
                res = run_flink_failover(timeout, kill.strip(), args.trials, args.work_dir, args.zk_connect)
                log.info("summary: %s", json.dumps(res["summary"]))
                runs.append(res)
                payload = {"benchmark": "flink-jobmanager-failover", "runs": runs}
                if args.out:  # written after every configuration so a late failure keeps earlier results
                    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    if not args.out:
        print(json.dumps({"benchmark": "flink-jobmanager-failover", "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
