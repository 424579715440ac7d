#!/usr/bin/env python3
"""End-to-end test of `gknet serve`'s page in a real browser (Debian's chromium + chromedriver,
driven by Selenium). Run by `make test-browser`, which installs what is missing.

    .venv-serve/bin/python Scripts/serve/browser_test.py [--gknet .build/release/gknet] [--port 18080]
        [--screenshots docs/images]

1. starts `gknet serve` on loopback and waits for /readyz;
2. tab "Composite + mask": uploads a bundled composite and its mask, clicks Harmonize, waits for
   the result, reads the result image back from the page and checks that it differs from the
   composite only inside the mask (and does differ there); saves a screenshot;
3. tab "Compose an object": uploads a background photo and an object cut-out (a PNG with
   transparency made from a bundled photo and its mask), drags the object with the mouse and
   moves the size slider, clicks Harmonize, and checks the returned composite, mask and result
   (the object landed where it was dragged; the result differs from the composite only inside the
   mask); saves a screenshot;
4. stops the server with SIGTERM and checks that it exits 0.
Exits non-zero with a message on the first failed check.
"""
import argparse
import base64
import io
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "Samples" / "HGCompris"


def fail(message):
    print(f"serve browser test: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def wait_ready(url, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    fail(f"the server did not become ready at {url} within {seconds} s")


def browser():
    options = webdriver.ChromeOptions()
    options.add_argument("--headless=new")
    options.add_argument("--no-sandbox")
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument("--window-size=1400,1100")
    for binary in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(binary):
            options.binary_location = binary
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver") if os.path.exists("/usr/bin/chromedriver") else None
    return webdriver.Chrome(options=options, service=service)


def image_from_src(driver, element_id):
    """The pixels of an <img> on the page (blob: or data: URL), read through fetch in the page."""
    data_url = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById(arguments[0]).src).then(r => r.blob()).then(blob => {
            const reader = new FileReader(); reader.onload = () => done(reader.result); reader.readAsDataURL(blob);
        }).catch(e => done("error:" + e));""", element_id)
    if not data_url.startswith("data:"):
        fail(f"cannot read #{element_id}: {data_url}")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def check_changes_only_inside(composite, result, mask, label):
    composite = np.asarray(composite.convert("RGB"), dtype=np.int32)
    result = np.asarray(result.convert("RGB"), dtype=np.int32)
    mask = np.asarray(mask.convert("L"), dtype=np.int32)
    if composite.shape != result.shape:
        fail(f"{label}: result is {result.shape}, composite {composite.shape}")
    difference = np.abs(result - composite).max(axis=2)
    outside = difference[mask == 0]
    inside = difference[mask == 255]
    # the page's composite and the server's decode of the same JPEG may differ by a level
    if outside.size and outside.max() > 1:
        fail(f"{label}: the result differs from the composite outside the mask (max {outside.max()})")
    if inside.size == 0 or inside.mean() < 0.5:
        fail(f"{label}: the result does not change the masked region (mean difference {inside.mean() if inside.size else 0:.2f})")
    print(f"  {label}: outside the mask max difference {outside.max() if outside.size else 0}, "
          f"inside mean difference {inside.mean():.2f}")


def wait_for_result(driver, label):
    try:
        WebDriverWait(driver, 180).until(lambda d: not d.find_element(By.ID, "results").get_attribute("class").count("hidden")
                                         or d.find_element(By.ID, "error").text)
    except Exception:
        fail(f"{label}: no result within 180 s")
    error = driver.find_element(By.ID, "error").text
    if error:
        fail(f"{label}: the page shows an error: {error}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gknet", default=str(ROOT / ".build" / "release" / "gknet"))
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--screenshots", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    work = pathlib.Path(tempfile.mkdtemp(prefix="gknet-browser-"))
    composite_path = SAMPLES / "composite_images" / "solar-cooker_1_1.jpg"
    mask_path = SAMPLES / "masks" / "solar-cooker_1.png"
    # the object cut-out: the moose photo with its mask as alpha
    moose = Image.open(SAMPLES / "real_images" / "moose.jpg").convert("RGB")
    moose_mask = Image.open(SAMPLES / "masks" / "moose_1.png").convert("L")
    box = moose_mask.getbbox()
    cutout = moose.crop(box)
    cutout.putalpha(moose_mask.crop(box))
    object_path = work / "moose-cutout.png"
    cutout.save(object_path)
    background_path = SAMPLES / "real_images" / "panda.jpg"

    server = subprocess.Popen([args.gknet, "serve", "--port", str(args.port), "--workers", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    driver = None
    try:
        wait_ready(url)
        print(f"serve browser test: server ready at {url}")
        driver = browser()
        driver.get(url + "/")
        # 1. composite + mask
        driver.find_element(By.ID, "composite").send_keys(str(composite_path))
        driver.find_element(By.ID, "mask").send_keys(str(mask_path))
        driver.find_element(By.ID, "run-upload").click()
        wait_for_result(driver, "upload tab")
        check_changes_only_inside(Image.open(composite_path), image_from_src(driver, "after"), Image.open(mask_path), "upload tab")
        if "Time:" not in driver.find_element(By.ID, "meta").text:
            fail("upload tab: the time taken is not shown")
        driver.save_screenshot(str(pathlib.Path(args.screenshots) / "serve-upload.png"))

        # 2. compose: drag and scale
        driver.find_element(By.ID, "tab-compose").click()
        driver.find_element(By.ID, "background").send_keys(str(background_path))
        driver.find_element(By.ID, "object").send_keys(str(object_path))
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "const o = document.getElementById('stage-object'), b = document.getElementById('stage-bg');"
            "return o.naturalWidth > 0 && b.naturalWidth > 0 && o.clientWidth > 0;"))
        slider = driver.find_element(By.ID, "scale")
        driver.execute_script("arguments[0].value = 0.6; arguments[0].dispatchEvent(new Event('input'));", slider)
        ActionChains(driver).drag_and_drop_by_offset(driver.find_element(By.ID, "stage-object"), 90, 60).perform()
        driver.find_element(By.ID, "run-compose").click()
        wait_for_result(driver, "compose tab")
        last = driver.execute_script("return window.lastCompose;")
        if not last or last["x"] <= 0 or last["y"] <= 0:
            fail(f"compose tab: dragging did not move the object ({last and (last['x'], last['y'])})")
        body = last["body"]
        decode = lambda key: Image.open(io.BytesIO(base64.b64decode(body[key])))
        composite, mask, result = decode("composite"), decode("mask"), decode("result")
        mask_array = np.asarray(mask.convert("L"))
        ys, xs = np.nonzero(mask_array)
        if xs.size == 0 or abs(xs.min() - last["x"]) > 2 or abs(ys.min() - last["y"]) > 2:
            fail(f"compose tab: the object's mask starts at {xs.min() if xs.size else None},{ys.min() if ys.size else None}, "
                 f"placed at {last['x']},{last['y']}")
        check_changes_only_inside(composite, result, mask, "compose tab")
        driver.save_screenshot(str(pathlib.Path(args.screenshots) / "serve-compose.png"))
    finally:
        if driver:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        try:
            status = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            fail("the server did not stop within 30 s of SIGTERM")
    if status != 0:
        fail(f"the server exited with status {status} after SIGTERM:\n{server.stdout.read()[-2000:]}")
    print("serve browser test: passed (upload tab, compose tab with drag and scale, graceful stop); "
          f"screenshots in {args.screenshots}")


if __name__ == "__main__":
    main()
