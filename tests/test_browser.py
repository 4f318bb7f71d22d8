"""End to end in a real browser: ``streamlit run app.py`` on a free port, driven with Debian's
Chromium through Playwright. Screenshots of every page go to ``artifacts/screenshots/``.

Needs /usr/bin/chromium (``.ci/run`` installs it); the app uses a temporary models folder, so
saving or deleting in the browser never touches ``models/``.
"""

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aecore

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DEMO = "server-metrics-demo"
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium (/usr/bin/chromium) is not installed; .ci/run installs it.",
    ),
]


def select_box(page, chart: int) -> None:
    """Drag a box from 15% to 85% of a Plotly chart's plot area (the charts open in box-select
    mode), as an analyst selects points."""
    area = page.locator("[data-testid='stPlotlyChart']").nth(chart).locator(".nsewdrag").first
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    page.mouse.move(box["x"] + 0.15 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for step in range(1, 11):
        share = 0.15 + 0.07 * step
        page.mouse.move(box["x"] + share * box["width"], box["y"] + share * box["height"])
    page.mouse.up()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A temporary models folder with the demo bundle (copied, or trained tiny if absent)."""
    folder = tmp_path_factory.mktemp("browser-models")
    bundled = ROOT / "models" / DEMO
    if (bundled / "meta.json").is_file():
        shutil.copytree(bundled, folder / DEMO)
    else:
        from aecore import store
        from aecore.detector import AnomalyDetector
        from aecore.io import reader

        frame = reader.read_csv(ROOT / "sample_data" / "server_metrics.csv")
        detector = AnomalyDetector(
            epochs=2, hidden_sizes=[16], code_size=3, roles={"timestamp": "time"}
        ).fit(frame)
        store.save(detector, DEMO, models_dir=folder)
    return folder


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    """The app served by ``streamlit run`` on a free local port; stopped at the end."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {
        **os.environ,
        "AECORE_MODELS_DIR": str(models_dir),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"streamlit did not answer in 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


# ---------------------------------------------------------------- helpers


def settle(page, timeout: float = 180) -> None:
    """Wait until the app has finished running and every chart is drawn."""
    deadline = time.time() + timeout
    calm = 0
    while time.time() < deadline:
        busy = page.locator(
            "[data-testid='stSkeleton'], [data-testid='stStatusWidgetRunningIcon']"
        ).count()
        charts = page.locator("[data-testid='stPlotlyChart']").count()
        drawn = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").count()
        calm = calm + 1 if not busy and drawn >= charts else 0
        if calm >= 3:
            return
        time.sleep(0.3)
    raise TimeoutError("the app did not settle")


def open_page(page, title: str) -> None:
    """Go to a page through the sidebar (a URL load would start a new session)."""
    page.locator("[data-testid='stSidebarNavLink']", has_text=title).first.click()
    heading = re.compile(re.escape(title.split(" ")[0]), re.IGNORECASE)
    page.locator("h1", has_text=heading).first.wait_for(timeout=60_000)
    settle(page)


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def flagged(page) -> int:
    tile = page.locator("[data-testid='stMetric']", has_text="Flagged rows")
    return int(tile.locator("[data-testid='stMetricValue']").inner_text().replace(",", ""))


def drag_threshold(page, to: float) -> None:
    """Drag the threshold slider's thumb with the mouse to ``to`` (0 = left end, 1 = right)."""
    slider = page.locator("[data-testid='stSlider']").first
    track = slider.locator("[role='group'] > div").first.bounding_box()
    thumb = slider.locator("input[type=range]").first.locator("xpath=..").locator("xpath=..")
    box = thumb.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    target = track["x"] + to * track["width"]
    for step in range(1, 11):
        page.mouse.move(box["x"] + (target - box["x"]) * step / 10, y)
    page.mouse.up()


def upload(page, path: Path) -> None:
    open_page(page, "Data")
    page.locator("[data-testid='stFileUploader'] input[type=file]").first.set_input_files(
        str(path)
    )
    page.get_by_text(f"Preview: {path.name}").wait_for(timeout=60_000)
    settle(page)


def new_page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1600}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page


def small_csv(path: Path, seed: int) -> Path:
    """400 rows of 6 correlated features with 8 labelled anomalies."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(400, 2))
    values = factors @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(400, 6))
    frame = pd.DataFrame(values.round(4), columns=[f"m{i}" for i in range(6)])
    frame["label"] = 0
    frame.loc[::50, "label"] = 1
    frame.loc[frame["label"] == 1, "m0"] += 6
    frame.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- tests


def test_upload_train_threshold_export_in_the_browser(server, browser, tmp_path):
    context, page = new_page(browser)
    try:
        page.goto(server)
        page.get_by_text("Flagged rows").first.wait_for(timeout=120_000)
        settle(page)
        shoot(page, "1-home")

        csv = small_csv(tmp_path / "upload_a.csv", seed=0)
        upload(page, csv)
        shoot(page, "2-data")

        open_page(page, "Train")
        epochs = page.get_by_label("Epochs (at most)")
        epochs.fill("4")
        epochs.press("Tab")
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Trained in").wait_for(timeout=180_000)
        settle(page)
        assert page.get_by_text("4 epochs").count() >= 1
        shoot(page, "3-train")

        open_page(page, "Threshold")
        assert page.get_by_text("trained in this session").count() >= 1
        before = flagged(page)
        drag_threshold(page, to=0.35)
        page.wait_for_function(
            "n => { const v = document.querySelector(\"[data-testid='stMetricValue']\");"
            " return v && parseInt(v.innerText.replace(/,/g, '')) !== n; }",
            arg=before,
            timeout=60_000,
        )
        settle(page)
        after = flagged(page)
        assert after > before
        shoot(page, "4-threshold")

        open_page(page, "Latent space & PCA")
        assert page.locator("[data-testid='stPlotlyChart']").count() == 2
        shoot(page, "5-latent")
        select_box(page, chart=0)  # drag a box over the middle of the latent scatter
        page.get_by_text(re.compile(r"[\d,]+ rows selected")).first.wait_for(timeout=60_000)
        picked = int(re.search(r"([\d,]+) rows selected", page.content()).group(1).replace(",", ""))
        assert picked > 0
        assert page.get_by_text("Nothing selected yet.").count() == 0
        shoot(page, "5-latent-selected")
        open_page(page, "Explain")
        shoot(page, "6-explain")

        open_page(page, "Export")
        shoot(page, "7-export")
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile(r"Download [\d,]+ rows as CSV")).click()
        exported = pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()),
                               encoding="utf-8-sig")  # fmt: skip
        assert len(exported) == after
        assert (exported["flag"] == 1).all()
        assert (exported["reconstruction_error"] > exported["threshold"]).all()
        assert exported["rank"].tolist() == sorted(exported["rank"])
        assert set(pd.read_csv(csv).columns) <= set(exported.columns)

        open_page(page, "Models")
        shoot(page, "8-models")

        open_page(page, "Few labels")
        shoot(page, "9-few-labels")
        open_page(page, "Drift")
        page.get_by_text("The current data").click()  # the session's model on its own data
        page.get_by_text("Verdict").first.wait_for(timeout=60_000)
        settle(page)
        shoot(page, "10-drift")
    except BaseException:
        shoot(page, "failure-main-flow")
        raise
    finally:
        context.close()


def test_two_sessions_at_once_see_only_their_own_data_and_flags(
    server, browser, models_dir, tmp_path
):
    from aecore.io import reader

    sample = pd.read_csv(ROOT / "sample_data" / "server_metrics.csv")
    parts = {"session_b.csv": sample.iloc[:1000], "session_c.csv": sample.iloc[2000:3500]}
    detector = aecore.load(DEMO, models_dir=models_dir)
    expected = {}
    for name, part in parts.items():
        part.to_csv(tmp_path / name, index=False)
        frame = reader.read_csv(tmp_path / name)
        expected[name] = int((detector.reconstruction_error(frame) > detector.threshold_).sum())
    assert expected["session_b.csv"] != expected["session_c.csv"]

    sessions = {name: new_page(browser) for name in parts}
    try:
        for name, (_, page) in sessions.items():
            page.goto(server)
            page.get_by_text("Flagged rows").first.wait_for(timeout=120_000)
            settle(page)
            upload(page, tmp_path / name)
        for name, (_, page) in sessions.items():
            open_page(page, "Threshold")
            other = next(n for n in parts if n != name)
            text = page.locator("[data-testid='stMain']").inner_text()
            assert name in text and other not in text
            assert flagged(page) == expected[name]
            assert f"{len(parts[name]):,} rows" in text
    except BaseException:
        for name, (_, page) in sessions.items():
            shoot(page, f"failure-{name}")
        raise
    finally:
        for context, _ in sessions.values():
            context.close()


def test_intrusion_sample_end_to_end_with_inferred_roles(server, browser):
    """The whole workflow on the intrusion sample with no role set by hand: the 22-value
    ``attack`` column is inferred as the label (not a model input), the export's ``source_row``
    finds each exported row in the input file, and the attack-heavy later file is "many
    anomalies", not drift."""
    from aecore.workflows import export

    train_csv = ROOT / "sample_data" / "intrusion_train.csv"
    test_csv = ROOT / "sample_data" / "intrusion_test.csv"
    context, page = new_page(browser)
    try:
        page.goto(f"{server}/data")  # straight to the Data page: the home page is not needed
        page.get_by_text("Upload a CSV or Parquet file").wait_for(timeout=120_000)
        settle(page)
        upload(page, train_csv)
        main = page.locator("[data-testid='stMain']")
        ready = main.locator("[data-testid='stAlert']", has_text="Ready to train")
        ready.wait_for()
        assert "label attack" in ready.inner_text()
        assert "looks like a label" not in main.inner_text()  # no label-like input warned of

        open_page(page, "Train")
        for field, value in (("Epochs (at most)", "3"), ("Hidden layer widths", "16")):
            box = page.locator(f"input[aria-label='{field}']")
            box.fill(value)
            box.press("Tab")
        settle(page)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Trained in").wait_for(timeout=180_000)
        settle(page)
        text = main.inner_text()
        assert "held-out rows" in text  # metrics measured on rows the model never trained on

        open_page(page, "Threshold")
        assert "intrusion_train.csv" in main.inner_text()
        assert flagged(page) > 0
        open_page(page, "Explain")
        assert re.search(r"\brow \d+", main.inner_text())

        open_page(page, "Export")
        page.get_by_text(re.compile(r"^all rows")).click()
        settle(page)
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile(r"Download [\d,]+ rows as CSV")).click()
        exported = pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()),
                               encoding="utf-8-sig")  # fmt: skip
        source = pd.read_csv(train_csv)
        assert len(exported) == len(source)
        assert exported.columns[0] == "source_row"
        assert sorted(exported["source_row"]) == list(range(2, len(source) + 2))
        found = source.iloc[exported["source_row"].to_numpy() - 2].reset_index(drop=True)
        clashing = set(export.export_column_names())  # an input column named like one added
        for column in source.columns:
            name = f"{column}_input" if column in clashing else column
            if pd.api.types.is_numeric_dtype(source[column]):
                np.testing.assert_allclose(exported[name], found[column], err_msg=column)
            else:
                assert (exported[name] == found[column]).all(), column
        assert (exported["attack"] != "normal").mean() == pytest.approx(0.03, abs=0.005)
        top = exported.nsmallest(150, "rank")  # the most anomalous rows are mostly attacks
        assert (top["attack"] != "normal").mean() > 0.5

        open_page(page, "Drift")
        page.get_by_text("Upload a CSV").click()
        settle(page)
        page.locator("[data-testid='stFileUploader'] input[type=file]").first.set_input_files(
            str(test_csv)
        )
        verdict = main.locator("h2", has_text="Verdict")
        verdict.wait_for(timeout=120_000)
        settle(page)
        said = verdict.inner_text()
        assert "drifted" not in said.lower() and "drifting" not in said.lower()
        assert "many anomalies" in said
    except BaseException:
        shoot(page, "failure-intrusion")
        raise
    finally:
        context.close()


def test_browser_review_marks_three_rows_and_sees_them_in_the_export(server, browser, models_dir):
    """On the Review page, mark the three highest flagged rows of the demo with the buttons
    (confirmed anomaly, false alarm with a note, confirmed anomaly); the marks are saved in the
    temporary models folder and the Export page's CSV carries them in its last two columns."""
    reviews = models_dir / ".reviews"
    shutil.rmtree(reviews, ignore_errors=True)  # no marks left by an earlier run of the module
    verdicts = [("anomaly", ""), ("normal", "known backup job"), ("anomaly", "")]
    context, page = new_page(browser)
    main = page.locator("[data-testid='stMain']")

    def current_row() -> int:
        heading = main.locator("h3", has_text=re.compile(r"^row \d+")).first
        heading.wait_for()
        return int(re.match(r"row (\d+)", heading.inner_text()).group(1))

    try:
        page.goto(server)
        page.get_by_text("Flagged rows").first.wait_for(timeout=120_000)
        settle(page)
        open_page(page, "Review")
        main.get_by_text("Flagged rows reviewed").wait_for()
        marked = {}
        for done, (status, note) in enumerate(verdicts, start=1):
            row = current_row()
            assert row not in marked  # the page moved on to a row not reviewed yet
            if note:
                box = page.get_by_label("Note (optional, saved with the verdict)")
                box.fill(note)
                box.press("Enter")
                settle(page)
            page.locator(f".st-key-review_mark_{status} button").click()
            tile = main.locator("[data-testid='stMetric']", has_text="Flagged rows reviewed")
            tile.locator("[data-testid='stMetricValue']", has_text=re.compile(
                rf"^{done} of [\d,]+$")).wait_for()  # fmt: skip
            settle(page)
            marked[row] = (status, note)
        assert current_row() not in marked
        for label, count in (("Confirmed anomalies", 2), ("False alarms", 1), ("Unsure", 0)):
            tile = main.locator("[data-testid='stMetric']", has_text=label)
            assert tile.locator("[data-testid='stMetricValue']").inner_text() == str(count)
        table = main.locator("[data-testid='stDataFrame']").last  # "Reviewed rows"
        table.locator("[role='grid'][aria-rowcount='4']").wait_for(state="attached")  # 1 + 3 rows
        saved = list(reviews.glob("*.json"))  # in the temporary models folder, not models/
        assert len(saved) == 1
        assert not (ROOT / "models" / ".reviews").exists()
        shoot(page, "11-review")

        open_page(page, "Export")
        assert "then `review_status` and `review_note`" not in main.inner_text()  # rendered
        assert "then review_status and review_note" in main.inner_text()
        preview = main.locator("[data-testid='stDataFrame']").first
        headers = preview.locator("th[role='columnheader']")  # the columns drawn (scrolled to)
        for _ in range(10):  # scroll the preview right, as a user would, to the review columns
            if {"review_status", "review_note"} <= set(headers.all_inner_texts()):
                break
            preview.locator(".dvn-scroller").evaluate("box => { box.scrollLeft += 400; }")
            time.sleep(0.3)
        assert {"review_status", "review_note"} <= set(headers.all_inner_texts())
        column = headers.filter(has_text="review_status").first.get_attribute("aria-colindex")
        shown = preview.locator(f"td[aria-colindex='{column}']").all_inner_texts()
        assert sorted(v for v in shown if v.strip()) == ["anomaly", "anomaly", "normal"], shown
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile(r"Download [\d,]+ rows as CSV")).click()
        exported = pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()),
                               encoding="utf-8-sig", keep_default_na=False)  # fmt: skip
        assert exported.columns[-2:].tolist() == ["review_status", "review_note"]
        assert (exported["flag"] == 1).all()
        got = exported.set_index("source_row")
        for row, (status, note) in marked.items():
            assert got.loc[row, "review_status"] == status, row
            assert got.loc[row, "review_note"] == note, row
        others = exported[~exported["source_row"].isin(list(marked))]
        assert len(others) > 0 and (others["review_status"] == "").all()
        assert (others["review_note"] == "").all()
    except BaseException:
        shoot(page, "failure-review")
        raise
    finally:
        context.close()
        shutil.rmtree(reviews, ignore_errors=True)  # the other tests score demo-like data
