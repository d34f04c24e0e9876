"""The web page of `seqgen serve`, in a real browser: Debian's headless Chromium driven by Selenium
against a real server on a free loopback port. Every wait is bounded; browser and servers are
always stopped. Set SEQGEN_PAGE_SCREENSHOTS=DIR to save the screenshots the docs show."""

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mido
import pytest
from live_server import Server

from seqgen.generation.samples import draw, load_model, midi_bytes
from seqgen.options import SampleOptions

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver" if os.access("/usr/bin/chromedriver", os.X_OK) else shutil.which("chromedriver")
browser = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                             reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                    "chromium-driver)")
TIMEOUT = 60  # seconds for any one wait in the browser or on the server
SHOTS = os.environ.get("SEQGEN_PAGE_SCREENSHOTS")



@pytest.fixture(scope="module")
def server():
    with Server("shakespeare", "chorale", "dinos", "chorale-satb", "--max-tokens", "100000") as s:
        yield s


@pytest.fixture(scope="module")
def keyed():
    with Server("dinos", "--api-key", "sesame", key="sesame") as s:
        yield s


@pytest.fixture(scope="module")
def downloads():
    with tempfile.TemporaryDirectory(prefix="seqgen-page-dl-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def driver(downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="seqgen-page-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1200,900"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    d = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        d.set_page_load_timeout(TIMEOUT)
        d.set_script_timeout(TIMEOUT)
        yield d
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.05).until(condition, message)


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def by_id(driver, id_):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_)


def open_page(driver, server, model):
    from selenium.webdriver.support.ui import Select

    driver.get(server.url + "/")
    wait(driver, lambda d: by_id(d, "model").is_enabled(), "the model list did not load")
    Select(by_id(driver, "model")).select_by_value(model)


def fill(driver, **fields):
    for name, value in fields.items():
        field = by_id(driver, name)
        field.clear()
        field.send_keys(str(value))


def finished(driver):
    """Wait until a generation ends; its status line, or the error the page shows."""
    def ended(d):
        status = by_id(d, "status").text
        error = by_id(d, "error")
        if error.is_displayed():
            return f"error: {error.text}"
        return status if status.startswith("Done") else False

    return wait(driver, ended, "the generation did not finish")


def text_of(driver, id_):
    return js(driver, "return document.getElementById(arguments[0]).textContent", id_)


def shot(driver, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / name))


def test_page_and_assets_are_served_without_the_key(server, keyed):
    page = httpx.get(keyed.url + "/", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="generate"' in page.text and "/static/page.js" in page.text
    for asset, kind in (("page.js", "javascript"), ("page.css", "text/css"), ("midi.js", "javascript"),
                        ("roll.js", "javascript"), ("player.js", "javascript")):
        r = httpx.get(f"{keyed.url}/static/{asset}", timeout=TIMEOUT)
        assert r.status_code == 200 and kind in r.headers["content-type"], asset
    static = Path(__file__).parents[1] / "seqgen" / "service" / "static"
    for path in static.iterdir():  # no internet needed: nothing refers to another host
        assert not re.search(r"(https?:)?//(?!www\.w3\.org/2000/svg)[\w.-]+\.\w+/", path.read_text()), path.name
    # only the page is public: the API still wants the key
    assert httpx.get(keyed.url + "/v1/models", timeout=TIMEOUT).status_code == 401
    sneaky = httpx.get(keyed.url + "/static/%2e%2e/v1/models", timeout=TIMEOUT)  # arrives as /static/../v1/models
    assert sneaky.status_code == 404 and "data" not in sneaky.text
    assert httpx.get(server.url + "/static/nowhere.js", timeout=TIMEOUT).status_code == 404


@browser
def test_text_streams_token_by_token_and_equals_seqgen_sample(driver, server):
    open_page(driver, server, "shakespeare")
    fill(driver, prime="ROMEO:", temperature=0.8, top_p=0.95, length=3000, seed=11)
    # record the output's length at every change, and whether the page was still generating then
    js(driver, """
        window.seen = [];
        const out = document.getElementById('output'), form = document.getElementById('controls');
        new MutationObserver(() => seen.push([out.textContent.length, form.hasAttribute('aria-busy')]))
            .observe(out, {childList: true, characterData: true, subtree: true});""")
    by_id(driver, "generate").click()
    status = finished(driver)
    shown = text_of(driver, "output")
    seen = js(driver, "return window.seen")
    growing = [n for n, busy in seen if busy and 0 < n < len(shown)]
    assert len(set(growing)) >= 3, seen  # several partial outputs while it was generating
    assert growing == sorted(growing)
    cli = subprocess.run([sys.executable, "-m", "seqgen", "sample", "--model", "shakespeare", "--prime", "ROMEO:",
                          "--temperature", "0.8", "--top-p", "0.95", "--length", "3000", "--seed", "11"],
                         capture_output=True, text=True, timeout=120, check=True)
    assert cli.stdout == shown + "\n"
    assert "seed 11" in status
    assert not by_id(driver, "error").is_displayed()
    js(driver, "document.getElementById('output').scrollTop = 0")
    shot(driver, "page-text.png")


@browser
def test_chorale_draws_a_piano_roll_plays_and_downloads_a_midi_file(driver, server, downloads):
    open_page(driver, server, "chorale")
    fill(driver, seed=3, length=400, temperature=0.9)
    by_id(driver, "generate").click()
    finished(driver)
    notes = js(driver, "return document.querySelectorAll('#roll rect.note').length")
    ckpt = load_model("chorale")
    options = SampleOptions(seed=3, length=400, temperature=0.9)
    sample = draw(options, ckpt).samples[0]
    assert notes == sum(t.startswith("n") for t in sample.tokens) > 10  # one drawn note per note token
    shot(driver, "page-chorale.png")

    for old in downloads.glob("*"):
        old.unlink()
    link = by_id(driver, "download")
    assert link.get_attribute("download") == "seqgen-chorale-3.mid"
    link.click()
    wait(driver, lambda d: list(downloads.glob("*.mid")), "the .mid download did not arrive")
    path = next(downloads.glob("*.mid"))
    wait(driver, lambda d: path.stat().st_size > 0 and not list(downloads.glob("*.crdownload")), "download unfinished")
    data = path.read_bytes()
    midi = mido.MidiFile(file=io.BytesIO(data))
    note_ons = [m for t in midi.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert len(note_ons) == notes
    assert data == midi_bytes(ckpt.tokenizer, sample, options)  # the very sample that streamed

    play = by_id(driver, "play")
    play.click()
    wait(driver, lambda d: play.text == "Stop playing", "Play did not start")
    assert by_id(driver, "status").text.startswith(f"Playing {notes} notes")
    cursor = "return Number(document.querySelector('#roll .cursor').getAttribute('x1'))"
    first = wait(driver, lambda d: js(d, cursor) or False, "the playback cursor did not move")
    wait(driver, lambda d: js(d, cursor) > first, "the playback cursor stopped")
    play.click()
    wait(driver, lambda d: play.text == "Play" and by_id(d, "status").text == "Finished playing.", "did not stop")
    assert not by_id(driver, "error").is_displayed()


@browser
def test_four_voice_chorale_roll_joins_held_notes_as_its_midi_file_does(driver, server):
    open_page(driver, server, "chorale-satb")
    fill(driver, seed=7, length=500)
    by_id(driver, "generate").click()
    status = finished(driver)
    ckpt = load_model("chorale-satb")
    options = SampleOptions(seed=7, length=500)
    data = midi_bytes(ckpt.tokenizer, draw(options, ckpt).samples[0], options)
    midi = mido.MidiFile(file=io.BytesIO(data))
    notes = sorted(m.note for t in midi.tracks for m in t if m.type == "note_on" and m.velocity > 0)
    drawn = js(driver, "return [...document.querySelectorAll('#roll rect.note')].map(r => Number(r.dataset.pitch))")
    assert sorted(drawn) == notes and len(notes) > 20  # struck and held tokens joined into notes
    assert f"{len(notes)} notes" in status
    by_id(driver, "play").click()  # the page's own MIDI reader finds the same notes in the file it fetched
    wait(driver, lambda d: by_id(d, "status").text.startswith(f"Playing {len(notes)} notes"), "not playing")
    by_id(driver, "play").click()


@browser
@pytest.mark.parametrize("field, value, words", [("temperature", "0", "greater than 0"),
                                                 ("top_p", "2", "less than or equal to 1"),
                                                 ("length", "-5", "greater than or equal to 1"),
                                                 ("seed", "1e", "not a number")])  # refused by the browser
def test_a_bad_value_is_shown_in_the_page(driver, server, field, value, words):
    open_page(driver, server, "dinos")
    fill(driver, **{field: value})
    by_id(driver, "generate").click()
    error = wait(driver, lambda d: by_id(d, "error").is_displayed() and by_id(d, "error"), "no error shown")
    assert error.get_attribute("role") == "alert"
    assert error.text.startswith("Error 400: " if words != "not a number" else "Error: ")
    assert field in error.text and words in error.text
    assert by_id(driver, field).get_attribute("aria-invalid") == "true"
    assert text_of(driver, "output") == ""
    fill(driver, **{field: {"temperature": "1", "top_p": "1", "length": "20", "seed": "1"}[field]})
    by_id(driver, "generate").click()  # corrected, it works and the error goes away
    finished(driver)
    assert not by_id(driver, "error").is_displayed() and by_id(driver, field).get_attribute("aria-invalid") is None


@browser
def test_stop_ends_a_long_sample_and_the_server_drops_its_stream(driver, server):
    open_page(driver, server, "shakespeare")
    fill(driver, length=100000, seed=1)
    by_id(driver, "generate").click()
    wait(driver, lambda d: len(text_of(d, "output")) > 100, "no text arrived")
    by_id(driver, "stop").click()
    wait(driver, lambda d: by_id(d, "status").text == "Stopped.", "Stop did not stop")
    assert len(text_of(driver, "output")) < 100000 and not by_id(driver, "error").is_displayed()
    assert driver.switch_to.active_element.get_attribute("id") == "generate"  # focus is not lost
    deadline = time.monotonic() + TIMEOUT
    while httpx.get(server.url + "/health", timeout=TIMEOUT).json()["models"]["shakespeare"]["active_streams"]:
        assert time.monotonic() < deadline, "the server kept sampling for a page that stopped"
        time.sleep(0.1)


@browser
def test_keyboard_alone_tab_to_generate_and_press_enter(driver, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.get(server.url + "/")
    wait(driver, lambda d: by_id(d, "model").is_enabled(), "the model list did not load")
    order = []
    for _ in range(20):  # from the top of a fresh page, with the keyboard only
        ActionChains(driver).send_keys(Keys.TAB).perform()
        order.append(js(driver, "return document.activeElement.id"))
        if order[-1] == "model":
            ActionChains(driver).send_keys("d").perform()  # type-ahead picks dinos
        elif order[-1] == "seed":
            ActionChains(driver).send_keys("4").perform()
        elif order[-1] == "generate":
            break
    assert order == ["model", "prime", "temperature", "top_p", "length", "seed", "generate"]
    assert js(driver, "return document.getElementById('model').value") == "dinos"
    outline = js(driver, "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
    assert outline[0] != "none" and outline[1] != "0px"  # focus is visible
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    finished(driver)
    expected = draw(SampleOptions(seed=4), load_model("dinos")).samples[0].text
    assert text_of(driver, "output") == expected
    ActionChains(driver).send_keys(Keys.SPACE).perform()  # Space on the focused button generates again
    finished(driver)
    assert text_of(driver, "output") == expected


@browser
def test_phone_width_has_no_horizontal_scrolling(driver, server):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        for model, fields in (("shakespeare", dict(length=600, seed=2, prime="KING RICHARD III:")),
                              ("chorale", dict(length=400, seed=3))):
            open_page(driver, server, model)
            fill(driver, **fields)
            by_id(driver, "generate").click()
            finished(driver)
            width = js(driver, "return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[1] == 390 and width[0] <= width[1], (model, width)
            for id_ in ("model", "generate", "output" if model == "shakespeare" else "roll"):
                box = js(driver, "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
                                 "return [r.left, r.right]", id_)
                assert 0 <= box[0] < box[1] <= 390, (id_, box)
            if model == "chorale":
                js(driver, "document.getElementById('status').scrollIntoView()")
                shot(driver, "page-phone-chorale.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@browser
def test_api_key_is_asked_for_and_a_401_is_explained(driver, keyed):
    driver.get(keyed.url + "/")
    error = wait(driver, lambda d: by_id(d, "error").is_displayed() and by_id(d, "error"), "no 401 shown")
    assert "needs an API key (401)" in error.text
    key = by_id(driver, "api-key")
    assert key.is_displayed()
    key.send_keys("wrong")
    by_id(driver, "generate").click()
    wait(driver, lambda d: "refused the API key (401)" in by_id(d, "error").text, "a wrong key was not explained")
    key.clear()
    key.send_keys("sesame")
    by_id(driver, "generate").click()
    finished(driver)
    assert text_of(driver, "output") and not by_id(driver, "error").is_displayed()
    assert js(driver, "return sessionStorage.getItem('seqgen-api-key')") == "sesame"
    js(driver, "sessionStorage.clear()")
