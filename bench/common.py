"""Shared pieces of the benchmark scripts: report header, Markdown tables, deadlines, memory."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
SHARED_MACHINE_NOTE = (
    "timings come from one run on the machine named above; on a shared CPU machine (other jobs "
    "running) they are noisy: compare ratios measured in the same run, not absolute values"
)

if TYPE_CHECKING:
    from engine.config import DetectorConfig


def config_digest(config: DetectorConfig) -> str:
    """A short digest of everything a detector config sets (seed included): a stored run keyed
    by it never stands in for a run of another default."""
    return hashlib.sha256(config.to_json().encode()).hexdigest()[:12]


def engine_version() -> str:
    """The installed engine's version, or the source tree's (the GPU box runs it uninstalled)."""
    from engine.versions import DISTRIBUTION, package_version

    installed = package_version(DISTRIBUTION)
    if installed != "unknown":
        return installed
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.is_file():
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        if found:
            return f"{found.group(1)} (source tree)"
    return "unknown"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what platform says)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_description(device: torch.device | None = None) -> str:
    """CPU model and count, torch threads, and the GPU when ``device`` is CUDA."""
    text = f"{cpu_model()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads"
    omp = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS") if k in os.environ}
    if omp:
        text += " (" + ", ".join(f"{k}={v}" for k, v in omp.items()) + ")"
    if device is not None and device.type == "cuda":
        text += f"; GPU {torch.cuda.get_device_name(device)}"
    return text


def versions() -> str:
    """Engine, torch, torchvision, FrEIA and Python versions on one line."""
    import torchvision

    from engine.versions import package_version

    return (
        f"engine {engine_version()}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, FrEIA {package_version('FrEIA')}, "
        f"Python {platform.python_version()}"
    )


def command_line() -> str:
    """The command that started this process, as typed (interpreter path shortened)."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if argv and Path(argv[0]).name.startswith("python"):
        argv[0] = "python"
    return shlex.join(argv)


def load_average() -> str:
    """The 1/5/15-minute load averages, or ``n/a``."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def utc_now() -> str:
    """The current UTC time, to the minute."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; cells are converted with ``str``."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Report:
    """One Markdown results file: a header (date, machine, versions, command), then sections."""

    title: str
    device: torch.device | None
    settings: dict[str, object]
    sections: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "complete"
    started: str = field(default_factory=utc_now)
    load_at_start: str = field(default_factory=load_average)

    def add(self, heading: str, body: str) -> None:
        """Append a section, or replace the one with the same heading in place."""
        for index, (existing, _) in enumerate(self.sections):
            if existing == heading:
                self.sections[index] = (heading, body)
                return
        self.sections.append((heading, body))

    def render(self) -> str:
        """The whole document."""
        settings = "; ".join(f"{key}={value}" for key, value in self.settings.items())
        header = [
            f"# {self.title}",
            "",
            f"- status: {self.status}",
            f"- date: {self.started} (written {utc_now()})",
            f"- machine: {machine_description(self.device)}; load average at start "
            f"{self.load_at_start}",
            f"- device: {self.device}",
            f"- versions: {versions()}",
            f"- command: `{command_line()}`",
            f"- settings: {settings}",
        ]
        header += [f"- note: {note}" for note in self.notes]
        body = [f"## {heading}\n\n{text}" for heading, text in self.sections]
        return "\n".join(header) + "\n\n" + "\n\n".join(body) + "\n"

    def write(self, path: Path) -> Path:
        """Write atomically (a temporary file, then rename) so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        os.replace(tmp, path)
        return path


class Deadline:
    """A wall-clock budget; ``None`` means no limit."""

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self.end = None if budget_s is None else time.monotonic() + budget_s

    def left(self) -> float:
        """Seconds left (infinite without a budget)."""
        return float("inf") if self.end is None else self.end - time.monotonic()

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.left() <= 0


def _proc_status_mb(key: str) -> float | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024.0
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (VmHWM; ru_maxrss where /proc is missing)."""
    value = _proc_status_mb("VmHWM")
    if value is not None:
        return value
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mb() -> float:
    """Current resident memory of this process in MiB (VmRSS; the peak where /proc is missing)."""
    value = _proc_status_mb("VmRSS")
    return value if value is not None else peak_rss_mb()


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    """``mean ± std`` (sample std, ddof=1; ``n=1`` shows the value alone)."""
    if not values:
        return "–"
    array = np.asarray(values, dtype=np.float64) * scale
    if array.size == 1:
        return f"{array[0]:.{digits}f} (n=1)"
    return f"{array.mean():.{digits}f} ± {array.std(ddof=1):.{digits}f} (n={array.size})"


def log(message: str) -> None:
    """One progress line on stderr with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
