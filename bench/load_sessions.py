"""N analysts at once on one dashboard server (issue 14, item 9).

Run by hand: ``python bench/load_sessions.py --sessions 1,4,10`` (minutes: every session really
trains). For each N, a fresh ``streamlit run app.py`` is started on 127.0.0.1 (a free port, a
temporary models folder holding the demo bundle); N headless Chromium sessions (Playwright,
/usr/bin/chromium) then, all at once, each: open the app (the sample scored by the demo model),
upload its own small CSV (400 rows x 6 columns, its own seed), train a dense model for a few
epochs on the Train page, and download the flagged rows from the Export page, checking the file.

Printed per N: the server's resident memory (VmRSS from /proc, sampled every 0.2 s) when idle
and at its peak, each session's wall time (median, max), how many sessions waited in the
training queue (``AECORE_TRAINING_WORKERS``), and failures. Target: every session completes,
nothing is lost (every export has its rows), peak memory grows sub-linearly in N.

Loopback only; every wait is bounded (``--timeout`` per N) and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
DEMO = "server-metrics-demo"
ARTIFACTS: Path | None = None  # --artifacts: server logs and failure screenshots
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """The peak of a process's resident memory, sampled every 0.2 s until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.2):
            value = rss_mb(self.pid)
            if value is not None:
                self.peak = max(self.peak, value)

    def stop(self) -> float:
        self._halt.set()
        self.join(5)
        return self.peak


def models_folder(folder: Path) -> Path:
    bundled = ROOT / "models" / DEMO
    if (bundled / "meta.json").is_file():
        shutil.copytree(bundled, folder / DEMO)
    else:
        sys.path.insert(0, str(ROOT))
        from aecore import store
        from aecore.detector import AnomalyDetector
        from aecore.io import reader

        frame = reader.read_csv(ROOT / "sample_data" / "server_metrics.csv")
        detector = AnomalyDetector(epochs=2, hidden_sizes=[16], code_size=3).fit(frame)
        store.save(detector, DEMO, models_dir=folder)
    return folder


def small_csv(path: Path, seed: int) -> Path:
    """400 rows of 6 correlated features, a few planted anomalies."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(400, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(400, 6))
    frame = pd.DataFrame(values.round(4), columns=[f"m{i}" for i in range(6)])
    frame.loc[::50, "m0"] += 6
    frame.to_csv(path, index=False)
    return path


def start_server(models: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "AECORE_MODELS_DIR": str(models), "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]  # fmt: skip
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            pass
        time.sleep(0.5)
    stop_server(process)
    raise RuntimeError("streamlit did not answer in 120 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---------------------------------------------------------------- one browser session


async def settle(page, timeout: float = 300) -> None:
    """Until the app has finished running and every chart is drawn."""
    deadline, calm = time.time() + timeout, 0
    while time.time() < deadline:
        busy = await page.locator(
            "[data-testid='stSkeleton'], [data-testid='stStatusWidgetRunningIcon']"
        ).count()
        charts = await page.locator("[data-testid='stPlotlyChart']").count()
        drawn = await page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").count()
        calm = calm + 1 if not busy and drawn >= charts else 0
        if calm >= 3:
            return
        await asyncio.sleep(0.3)
    raise TimeoutError("the app did not settle")


async def open_page(page, title: str) -> None:
    await page.locator("[data-testid='stSidebarNavLink']", has_text=title).first.click()
    heading = re.compile(re.escape(title.split(" ")[0]), re.IGNORECASE)
    await page.locator("h1", has_text=heading).first.wait_for(timeout=120_000)
    await settle(page)


async def one_session(browser, url: str, csv: Path, epochs: int) -> dict:
    """Open, upload, train, export; returns {"seconds", "queued", "rows"} or {"error"}."""
    start = time.perf_counter()
    context = await browser.new_context(viewport={"width": 1440, "height": 1600},
                                        accept_downloads=True)  # fmt: skip
    page = await context.new_page()
    page.set_default_timeout(300_000)
    queued = False
    try:
        await page.goto(url)
        await page.get_by_text("Flagged rows").first.wait_for()
        await settle(page)
        await open_page(page, "Data")
        await page.locator("[data-testid='stFileUploader'] input[type=file]").first.set_input_files(
            str(csv)
        )
        await page.get_by_text(f"Preview: {csv.name}").wait_for()
        await settle(page)
        await open_page(page, "Train")
        field = page.get_by_label("Epochs (at most)")
        await field.fill(str(epochs))
        await field.press("Tab")
        await settle(page)
        await page.get_by_role("button", name="Start training").click()
        done = page.get_by_text(re.compile(r"Trained (on .* )?in \d+ s"))
        deadline = time.time() + 600
        while not await done.count():
            if await page.get_by_text("Queued:").count():
                queued = True
            if await page.locator("[data-testid='stException']").count():
                raise RuntimeError("the Train page shows an exception")
            if time.time() > deadline:
                raise TimeoutError("training did not finish in 600 s")
            await asyncio.sleep(0.5)
        await settle(page)
        await open_page(page, "Export")
        async with page.expect_download() as download:
            button = page.get_by_role("button", name=re.compile(r"Download [\d,]+ rows as CSV"))
            await button.click()
        value = await download.value
        exported = pd.read_csv(io.BytesIO(Path(await value.path()).read_bytes()),
                               encoding="utf-8-sig")  # fmt: skip
        if exported.empty or not {"reconstruction_error", "m0"} <= set(exported.columns):
            raise RuntimeError(f"the export lost its rows or columns ({exported.shape})")
        return {"seconds": time.perf_counter() - start, "queued": queued, "rows": len(exported)}
    except Exception as error:  # noqa: BLE001 - a bench counts failures, it does not stop
        if ARTIFACTS is not None:
            await page.screenshot(path=str(ARTIFACTS / f"failure-{csv.stem}.png"), full_page=True)
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}",
                "seconds": time.perf_counter() - start, "queued": queued}  # fmt: skip
    finally:
        await context.close()


async def run_sessions(url: str, csvs: list[Path], epochs: int, timeout: float) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            tasks = [one_session(browser, url, csv, epochs) for csv in csvs]
            return await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        except asyncio.TimeoutError:
            return [{"error": f"the run did not end in {timeout:.0f} s"}] * len(csvs)
        finally:
            await browser.close()


def measure(n: int, epochs: int, timeout: float, work: Path) -> dict:
    models = models_folder(Path(tempfile.mkdtemp(dir=work, prefix=f"models-{n}-")))
    csvs = [small_csv(work / f"session_{n}_{i}.csv", seed=100 * n + i) for i in range(n)]
    process, url = start_server(models, work / f"streamlit-{n}.log")
    try:
        time.sleep(2)
        idle = rss_mb(process.pid) or 0.0
        sampler = Sampler(process.pid)
        sampler.start()
        results = asyncio.run(run_sessions(url, csvs, epochs, timeout))
        peak = sampler.stop()
    finally:
        stop_server(process)
        if ARTIFACTS is not None:
            shutil.copy(work / f"streamlit-{n}.log", ARTIFACTS / f"streamlit-{n}.log")
    ok = [r for r in results if "error" not in r]
    times = [r["seconds"] for r in ok]
    return {
        "n": n, "idle_mb": idle, "peak_mb": peak, "ok": len(ok),
        "failures": [r["error"] for r in results if "error" in r],
        "median_s": statistics.median(times) if times else float("nan"),
        "max_s": max(times) if times else float("nan"),
        "queued": sum(bool(r.get("queued")) for r in results),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,4,10", help="comma-separated N (default 1,4,10)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training (default 3)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds allowed for all N sessions of one run (default 1800)")
    parser.add_argument("--artifacts", metavar="DIR",
                        help="keep the server logs and failure screenshots here")
    args = parser.parse_args(argv)
    global ARTIFACTS
    if args.artifacts:
        ARTIFACTS = Path(args.artifacts)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        counts = [int(part) for part in args.sessions.split(",") if part.strip()]
        if not counts or min(counts) < 1 or max(counts) > 50:
            raise ValueError
    except ValueError:
        parser.error(f"--sessions must be whole numbers from 1 to 50, e.g. 1,4,10; got "
                     f"{args.sessions!r}")  # fmt: skip
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is not installed")
    workers = os.environ.get("AECORE_TRAINING_WORKERS", "2 (default)")
    print(f"cores: {os.cpu_count()}, training workers: {workers}, epochs: {args.epochs}")
    print("| sessions | completed | failures | server RSS idle | peak RSS | peak / N=1 peak "
          "| wall time median | max | waited in queue |")
    print("|---|---|---|---|---|---|---|---|---|")
    first_peak = None
    with tempfile.TemporaryDirectory(prefix="load-sessions-") as folder:
        for n in counts:
            result = measure(n, args.epochs, args.timeout, Path(folder))
            first_peak = first_peak or result["peak_mb"]
            print(f"| {n} | {result['ok']}/{n} | {len(result['failures'])} | "
                  f"{result['idle_mb']:,.0f} MB | {result['peak_mb']:,.0f} MB | "
                  f"{result['peak_mb'] / first_peak:.2f}x | {result['median_s']:.1f} s | "
                  f"{result['max_s']:.1f} s | {result['queued']} |", flush=True)  # fmt: skip
            for failure in result["failures"]:
                print(f"  failure (N={n}): {failure}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
