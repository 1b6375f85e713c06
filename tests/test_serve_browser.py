"""``rxstream serve`` in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``).

CI installs Chromium (``.ci/run``) and sets ``RXSTREAM_REQUIRE_BROWSER=1``, which turns a
missing browser into a failure instead of a (reported) skip.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxstream.testing import ResponseScript, ScriptedToolCall

DOCS = Path(__file__).resolve().parent.parent / "docs"
WORDS = " ".join(f"word{i}" for i in range(60))
ANSWER = f'Careful: <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> {WORDS}'
SCRIPT = ResponseScript(
    thinking="The user wants a demo. I will answer slowly and then call a tool.",
    text=ANSWER,
    tool_calls=[
        ScriptedToolCall(id="toolu_01", name="get_weather", arguments='{"city": "Paris", "unit": "C"}')
    ],
    stop_reason="tool_use",
    event_delay=0.04,
    first_event_delay=0.2,
)


def _browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@contextlib.contextmanager
def _serve(*extra: str, script: ResponseScript | None = None) -> Iterator[str]:
    """Run ``rxstream serve --port 0 *extra`` (emulator: ``script``, else the demo model); yield its URL."""
    env = {k: v for k, v in os.environ.items() if k != "RXSTREAM_EMULATOR_SCRIPT"}
    if script is not None:
        env["RXSTREAM_EMULATOR_SCRIPT"] = script.model_dump_json()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxstream.cli", "serve", "--port", "0", "--emulator", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the URL line; the test timeout bounds the wait
        assert line.startswith("rxstream serve: http://127.0.0.1:"), line + (
            proc.stderr.read() if proc.stderr else ""
        )
        yield line.split()[2]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def serve_url() -> Iterator[str]:
    with _serve(script=SCRIPT) as url:
        yield url


@pytest.fixture
def tools_url() -> Iterator[str]:
    with _serve("--tools", "demo", "--max-iterations", "3") as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    paths = _browser_paths()
    if paths is None:
        if os.environ.get("RXSTREAM_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))
    try:
        yield driver
    finally:
        driver.quit()


def _emulator_records(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "api/emulator", timeout=10) as resp:
        records: list[dict[str, Any]] = json.load(resp)
    return records


def test_chat_page_streams_escapes_and_stops(serve_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20, poll_frequency=0.02)
    browser.get(serve_url)
    wait.until(lambda d: "emulator" in d.find_element(By.ID, "info").text)

    def answer_text(index: int) -> str:
        boxes = browser.find_elements(By.CSS_SELECTOR, ".message.assistant .text")
        return str(boxes[index].get_attribute("textContent")) if len(boxes) > index else ""

    # 1. A whole answer: text grows across several DOM snapshots, thinking and the tool call show.
    browser.find_element(By.ID, "prompt").send_keys("Show me a streamed answer", Keys.ENTER)
    snapshots: list[str] = []

    def grown(_: Any) -> bool:
        text = answer_text(0)
        if text and (not snapshots or len(text) > len(snapshots[-1])):
            snapshots.append(text)
        return len(snapshots) >= 4

    wait.until(grown)
    assert all(a and b.startswith(a) for a, b in itertools.pairwise(snapshots))
    assert len(snapshots[-1]) < len(ANSWER), "the answer arrived at once, not incrementally"
    wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".message.assistant").get_attribute("data-state") == "done"
    )
    first = browser.find_element(By.CSS_SELECTOR, ".message.assistant")
    assert answer_text(0) == ANSWER  # the markup arrived as text
    assert (
        first.find_element(By.CSS_SELECTOR, "details.thinking pre").get_attribute("textContent")
        == SCRIPT.thinking
    )
    tool = first.find_element(By.CSS_SELECTOR, "details.tool")
    assert "get_weather" in tool.text and '"city": "Paris"' in str(tool.get_attribute("textContent"))
    stats = first.find_element(By.CSS_SELECTOR, ".stats").text
    assert "TTFT" in stats and "tok/s" in stats and "stop: tool_use" in stats
    # No HTML injection: nothing the model wrote became an element, no script ran.
    assert browser.find_elements(By.CSS_SELECTOR, ".message script, .message img") == []
    assert browser.execute_script("return window.__pwned === undefined") is True

    # 2. Stop mid-answer: the browser aborts, the server disposes, the emulator sees the client go.
    browser.find_element(By.ID, "prompt").send_keys("And another one", Keys.ENTER)
    wait.until(lambda d: len(answer_text(1)) > 40)
    browser.find_element(By.ID, "stop").click()
    wait.until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, ".message.assistant")[1].get_attribute("data-state") == "stopped"
        )
    )
    assert len(answer_text(1)) < len(ANSWER)
    wait.until(
        lambda d: len(_emulator_records(serve_url)) == 2 and _emulator_records(serve_url)[1]["ended_at"]
    )
    records = _emulator_records(serve_url)
    assert records[0]["completed"] and not records[0]["client_disconnected"]
    assert records[1]["client_disconnected"] and not records[1]["completed"]

    DOCS.mkdir(exist_ok=True)
    browser.save_screenshot(str(DOCS / "serve.png"))


CALCULATOR_STATE = """
const answer = document.querySelector(".message.assistant");
const box = answer && [...answer.querySelectorAll("details.tool")].find(
  (b) => b.querySelector("summary").textContent.includes("calculator"));
return box ? [box.dataset.state, answer.dataset.state] : null;
"""


def test_tool_mode_shows_iterations_tool_results_and_the_final_answer(tools_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20, poll_frequency=0.02)
    browser.get(tools_url)
    wait.until(lambda d: "tool loop: calculator, clock" in d.find_element(By.ID, "info").text)
    browser.find_element(By.ID, "prompt").send_keys("What is 12 * (3 + 4)? <b>bold</b>", Keys.ENTER)

    # The call box appears while the arguments stream, then the result lands in the same box,
    # before the answer has ended (both states read in one script call: one page snapshot).
    states: list[Any] = []

    def result_shown(d: Any) -> bool:
        states.append(d.execute_script(CALCULATOR_STATE))
        return bool(states[-1]) and states[-1][0] == "result"

    wait.until(result_shown)
    assert states[-1][1] == "streaming", states[-1]
    answer = browser.find_element(By.CSS_SELECTOR, ".message.assistant")
    box = answer.find_element(By.CSS_SELECTOR, "details.tool")
    assert "calculator" in box.find_element(By.TAG_NAME, "summary").text
    assert '"expression": "12 * (3 + 4)"' in str(box.find_element(By.CSS_SELECTOR, "pre.args").text)
    assert box.find_element(By.CSS_SELECTOR, "pre.result").text == "12 * (3 + 4) = 84"

    # Then the final answer streams into the last iteration, marked as final.
    wait.until(lambda d: answer.get_attribute("data-state") == "done")
    sections = answer.find_elements(By.CSS_SELECTOR, "section.iteration")
    assert [s.get_attribute("data-iteration") for s in sections] == ["1", "2"]
    final = answer.find_element(By.CSS_SELECTOR, "section.iteration.final .text").text
    assert final.startswith("The tools answered: 12 * (3 + 4) = 84;")
    assert len(sections[0].find_elements(By.CSS_SELECTOR, "details.tool")) == 2
    assert sections[0].find_elements(By.CSS_SELECTOR, "details.tool[data-state=result]")[1]
    stats = answer.find_element(By.CSS_SELECTOR, ".stats").text
    assert "2 iterations" in stats and "2 tool calls" in stats and "stop: end_turn" in stats, stats
    heads = [s.find_element(By.CSS_SELECTOR, ".iteration-head").text for s in sections]
    inputs = [int(re.search(r"(\d+) in /", head)[1]) for head in heads]  # type: ignore[index]
    assert f"{sum(inputs)} in /" in stats  # the stats line sums the loop
    # The prompt's markup stayed text.
    assert browser.find_elements(By.CSS_SELECTOR, ".message b") == []

    # A second question (its history: the first question and the final answer's text): the
    # calculator refuses, and its error result lands in its box.
    browser.find_element(By.ID, "prompt").send_keys("And 2 ** 1000?", Keys.ENTER)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".message.assistant")) == 2)
    second = browser.find_elements(By.CSS_SELECTOR, ".message.assistant")[1]
    wait.until(lambda d: second.get_attribute("data-state") == "done")
    failed = second.find_element(By.CSS_SELECTOR, "details.tool[data-state=error]")
    assert "calculator" in failed.find_element(By.TAG_NAME, "summary").text
    assert failed.find_element(By.CSS_SELECTOR, "pre.result.error").text == "exponent too large"


def test_busy_port_is_reported_with_a_non_zero_exit(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from rxstream.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert f"port {port} on 127.0.0.1 is busy" in capsys.readouterr().err
