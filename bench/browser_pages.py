"""Page times in a real browser on a project with many scored images.

For each size, a fresh store (``bench/bulk_store.py``: two ready models that scored every
image, a heatmap per score, reviewer verdicts) and the studio's web server
(``dashboard/server.py``) start; headless Chromium signs in and then, five times each, opens
Projects, Review, Thresholds, Compare and Export from the sidebar, presses the Review key that
moves to the next image, and moves the Thresholds slider. A time runs from the click or key
press to the end of the server's run that it caused (the page's last element is on screen;
for a run too short for the page to show it as running, the page's last change after the run's
last message); the server's own time for that run comes from ``ADN_RERUN_LOG``. Writes a
Markdown table.

    python -m bench.browser_pages                        # 5,000 and 100,000 images, SQLite
    python -m bench.browser_pages --sizes 5000 --database postgres
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import bulk_store

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "browser-pages.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Sidebar link and page; sign-in lands on Projects, so it is opened last, from Export.
PAGES = (
    ("Review", "Review"),
    ("Thresholds", "Thresholds"),
    ("Compare", "Compare"),
    ("Export", "Export"),
    ("Projects & upload", "Projects & upload"),
)
TARGETS = {"page": 1.5, "review key": 0.3, "sign-in": 2.0}
# Records, with the browser's clock, every time the app leaves a state (the mutation records
# keep the old value even when a run starts and ends between two observer callbacks).
WATCH_RUNS = """
() => {
  window.__adnRuns = [];
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver((records) => {
    const now = performance.now();
    for (const r of records) window.__adnRuns.push([r.oldValue, now]);
  }).observe(app, {attributes: true, attributeOldValue: true,
    attributeFilter: ['data-test-script-state']});
  window.__adnDrawn = [];
  new MutationObserver(() => window.__adnDrawn.push(performance.now())).observe(app,
    {subtree: true, childList: true, attributes: true, characterData: true});
}
"""
# Records when each message from the server arrives (installed before the app's own scripts).
TAP_MESSAGES = """
(() => {
  const Native = window.WebSocket;
  window.__adnMessages = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => window.__adnMessages.push(performance.now()));
    }
  };
})();
"""
# When the run ended: the browser left the running state; or, when it never drew the run as
# running (a run so short that the app took its start and end in one update), the page's last
# change after the run's last server message, once the page has been still for a second.
RUN_ENDED_AFTER = """
(t0) => {
  const left = (window.__adnRuns || []).find(([old, t]) => old === 'running' && t >= t0);
  if (left) return left[1] - t0;
  const seen = (window.__adnRuns || []).some(([, t]) => t >= t0);
  const app = document.querySelector('[data-testid="stApp"]');
  const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
  const messages = (window.__adnMessages || []).filter((t) => t >= t0);
  if (seen || !idle || messages.length < 2) return null;
  const drawn = (window.__adnDrawn || []).filter((t) => t >= t0);
  const last = Math.max(messages[messages.length - 1], ...drawn);
  return performance.now() - last > 1000 ? last - t0 : null;
}
"""


@dataclass
class Timing:
    """One action's browser times (s) and the server run times (ms) they caused."""

    action: str
    seconds: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a temporary PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'studio.db'}"
        return
    from sqlalchemy import create_engine, text

    name = f"adn_bench_{os.getpid()}_{int(time.time())}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def studio(url: str, data_dir: Path, rerun_log: Path) -> Iterator[str]:
    """The studio's web server (no worker) on a free port; yields its address."""
    port = free_port()
    env = {
        **os.environ,
        "ADN_DATA_DIR": str(data_dir),
        "ADN_DATABASE_URL": url,
        "ADN_RERUN_LOG": str(rerun_log),
    }
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/server.py"]
    command += ["--server.headless", "true", "--server.port", str(port)]
    command += ["--browser.gatherUsageStats", "false"]
    log = (data_dir / "dashboard.log").open("wb")
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{address}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(
                f"the studio did not start:\n{(data_dir / 'dashboard.log').read_text()}"
            )
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _server_runs(rerun_log: Path, since: float) -> list[float]:
    if not rerun_log.is_file():
        return []
    lines = [json.loads(line) for line in rerun_log.read_text().splitlines() if line.strip()]
    return [line["ms"] for line in lines if line["at"] >= since]


def timed(
    page: Any, action: Callable[[], None], rerun_log: Path, timeout_s: float = 120
) -> tuple[float, list[float]]:
    """Seconds from ``action`` to the end of the server run it caused, and that run's ms."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
        timeout=timeout_s * 1000
    )
    page.wait_for_timeout(300)  # let the page settle: the action starts from a finished page
    page.evaluate(WATCH_RUNS)
    wall = time.time()
    t0 = page.evaluate("performance.now()")
    action()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        took = page.evaluate(RUN_ENDED_AFTER, t0)
        if took is not None:
            page.wait_for_timeout(300)  # the run's log line is written when it returns
            return took / 1000.0, _server_runs(rerun_log, wall)
        page.wait_for_timeout(20)
    raise TimeoutError(f"the page never finished its run: {page.evaluate('window.__adnRuns')}")


def sign_in(page: Any, address: str, rerun_log: Path) -> tuple[float, list[float]]:
    page.goto(address)
    page.get_by_role("textbox", name="User name").fill(bulk_store.ADMIN)
    page.get_by_role("textbox", name="Password").fill(bulk_store.ADMIN_PASSWORD)
    page.wait_for_timeout(300)

    def press() -> None:
        page.get_by_role("button", name="Sign in", exact=True).click()

    seconds, server = timed(page, press, rerun_log)
    page.get_by_role("heading", name="Projects & upload").wait_for(timeout=60_000)
    return seconds, server


def _open(page: Any, link: str) -> Callable[[], None]:
    def click() -> None:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True).click()

    return click


def _nudge(page: Any, step: int) -> Callable[[], None]:
    """Move the threshold slider one step, right and left in turn (it never runs into an end)."""

    def press() -> None:
        page.get_by_role("slider").first.focus()
        page.keyboard.press("ArrowRight" if step % 2 == 0 else "ArrowLeft")

    return press


def measure(address: str, rerun_log: Path, repeats: int) -> list[Timing]:
    """Every action ``repeats`` times in one signed-in browser session."""
    from playwright.sync_api import sync_playwright

    out: dict[str, Timing] = {}

    def add(action: str, seconds: float, server: list[float]) -> None:
        timing = out.setdefault(action, Timing(action))
        timing.seconds.append(seconds)
        timing.server_ms.extend(server[-1:])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(TAP_MESSAGES)
        for repeat in range(repeats):
            page.context.clear_cookies()
            add("sign-in to first page", *sign_in(page, address, rerun_log))
            for link, heading in PAGES:
                add(f"open {heading}", *timed(page, _open(page, link), rerun_log))
                if heading == "Review":
                    add(
                        "Review: key to next image",
                        *timed(page, lambda: page.keyboard.press("s"), rerun_log),
                    )
                if heading == "Thresholds":
                    add(
                        "Thresholds: move the slider", *timed(page, _nudge(page, repeat), rerun_log)
                    )
        browser.close()
    return list(out.values())


def _target(action: str) -> float:
    if action.startswith("sign-in"):
        return TARGETS["sign-in"]
    if "key" in action:
        return TARGETS["review key"]
    return TARGETS["page"]


def table(results: dict[int, list[Timing]], repeats: int) -> list[str]:
    sizes = sorted(results)
    header = (
        "| action | target s | "
        + " | ".join(f"{n:,} images: median s (worst) · server ms" for n in sizes)
        + " |"
    )
    lines = [header, "|---|---|" + "---|" * len(sizes)]
    for index, timing in enumerate(results[sizes[0]]):
        cells = []
        for n in sizes:
            t = results[n][index]
            server = f"{statistics.median(t.server_ms):.0f}" if t.server_ms else "n/a"
            met = "" if max(t.seconds) <= _target(t.action) else " ✗"
            cells.append(
                f"{statistics.median(t.seconds):.2f} ({max(t.seconds):.2f}){met} · {server}"
            )
        lines.append(f"| {timing.action} | {_target(timing.action)} | " + " | ".join(cells) + " |")
    return lines


def report(
    results: dict[int, list[Timing]],
    stores: dict[int, bulk_store.BulkStore],
    args: argparse.Namespace,
    load_before: float,
) -> str:
    load = os.getloadavg()
    lines = [
        "# Page times in the browser",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPU cores, no GPU; "
        f"load average {load_before:.2f} before the runs, {load[0]:.2f} after",
        f"- database: {args.database}; browser: headless Chromium; "
        f"{args.repeats} runs of each action",
        f"- command: `python -m bench.browser_pages {shlex.join(sys.argv[1:])}`",
        "- time: from the click or key press to the end of the server run it caused (the page's "
        "last element is drawn), as the browser's clock sees it; server ms: that run's own time",
        "- a run too short for the page to draw it as running is timed to the page's last change "
        "after the run's last message from the server",
        "- ✗: the worst of the runs misses the target (pages 1.5 s, review key 0.3 s, sign-in 2 s)",
        "- server ms n/a: the action reruns only part of the page (a fragment), which the rerun "
        "log does not time",
    ]
    for n, store in sorted(stores.items()):
        lines.append(
            f"- store of {n:,} images: {store.models} scored models, "
            f"{store.images * store.models:,} scores with heatmaps, {store.verdicts:,} verdicts; "
            f"built in {store.seconds:.0f} s"
        )
    return "\n".join([*lines, "", *table(results, args.repeats), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 100_000])
    parser.add_argument("--verdicts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    results: dict[int, list[Timing]] = {}
    stores: dict[int, bulk_store.BulkStore] = {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="adn-pages-") as tmp:
            folder = Path(tmp)
            with database(args.database, folder) as url:
                stores[n] = bulk_store.build(url, folder, images=n, verdicts=args.verdicts)
                print(f"{n:,} images: store built in {stores[n].seconds:.0f} s", flush=True)
                rerun_log = folder / "reruns.jsonl"
                with studio(url, folder, rerun_log) as address:
                    results[n] = measure(address, rerun_log, args.repeats)
            for t in results[n]:
                print(
                    f"  {t.action}: median {statistics.median(t.seconds):.2f} s, "
                    f"worst {max(t.seconds):.2f} s",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(results, stores, args, load_before))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
