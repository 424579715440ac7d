#!/usr/bin/env python3
"""Abuse suite of `gknet serve` (docs/robustness.md, "Abusive clients"); Python's standard library only.

    python3 Scripts/serve/abuse_test.py [--gknet .build/release/gknet] [--heavy] [--bench-parse]

Starts the server on loopback (1 worker, queue 4, --read-timeout 10, --shutdown-timeout 3) and runs
each case against it with a stated bound; prints one line per case and exits non-zero if any fails.
Quick cases (the default, in .ci/run): boundary-only bodies of 64 KiB and 1 MiB, 10,000 tiny parts,
a 50 MB upload by urllib, 16 connections trickling a byte a second, a client that disconnects
mid-job, and SIGTERM amid uploads, trickles and a running job.
--heavy (or ABUSE_HEAVY=1) uses the sizes of issue 22: boundary-only bodies up to 32 MiB, a 300 MB
upload, 64 trickling connections held until the read timeout drops them.
--bench-parse: the time to answer a form of 1 KiB ... 32 MiB (docs/benchmarks.md, "Request bodies").
"""
import argparse
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PORT = int(os.environ.get("PORT", "18097"))
HOST = "127.0.0.1"
READ_TIMEOUT = 10
SHUTDOWN_TIMEOUT = 3
results = []


def check(name, ok, measured, bound):
    results.append((name, ok, measured, bound))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {measured} (bound: {bound})", flush=True)


def post(body, content_type="multipart/form-data; boundary=B", timeout=30, headers=None):
    """POST body with http.client (whole body first, then the answer, like urllib); (status, json, seconds)."""
    start = time.monotonic()
    connection = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        connection.request("POST", "/v1/harmonize", body=body,
                           headers={"Content-Type": content_type, **(headers or {})})
        response = connection.getresponse()
        data = response.read()
        try:
            payload = json.loads(data)
        except ValueError:
            payload = {}
        return response.status, payload, time.monotonic() - start
    finally:
        connection.close()


def healthz_latency(timeout=5):
    start = time.monotonic()
    with urllib.request.urlopen(f"http://{HOST}:{PORT}/healthz", timeout=timeout) as response:
        response.read()
    return time.monotonic() - start


def metric(name):
    with urllib.request.urlopen(f"http://{HOST}:{PORT}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


class HealthProbe:
    """Asks /healthz every 50 ms on a thread while a case runs; latencies in seconds."""

    def __init__(self):
        self.latencies, self.failures, self.stop = [], 0, threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            try:
                self.latencies.append(healthz_latency())
            except OSError:
                self.failures += 1
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()

    def p99(self):
        if not self.latencies:
            return float("inf")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def png(width, height, channels):
    """A PNG of a smooth pattern (stdlib zlib), 8-bit gray (1) or RGB (3)."""
    row_pattern = bytes((x * 7 + c * 50) % 256 for x in range(width) for c in range(channels))
    raw = b"".join(b"\x00" + row_pattern for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def form(fields, boundary="gknetabuse"):
    out = []
    for name, data in fields:
        out.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.png\"\r\n\r\n"
                   .encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def start_server(gknet, extra=()):
    log = tempfile.NamedTemporaryFile(prefix="gknet-abuse-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [gknet, "serve", "--port", str(PORT), "--workers", "1", "--queue", "4", "--read-timeout", str(READ_TIMEOUT),
         "--shutdown-timeout", str(SHUTDOWN_TIMEOUT), *extra], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            healthz_latency(timeout=1)
            return process, log.name
        except OSError:
            if process.poll() is not None:
                sys.exit(f"abuse_test: the server exited at start (log {log.name})")
            time.sleep(0.1)
    sys.exit("abuse_test: the server did not start")


def boundary_only(sizes):
    for size in sizes:
        body = (b"--B\r\n" * (size // 5 + 1))[:size]
        with HealthProbe() as probe:
            status, payload, seconds = post(body)
        check(f"boundary-only body {size >> 10} KiB", status == 400 and seconds < 1.0 and probe.failures == 0,
              f"{status} {payload.get('error')} in {seconds:.3f} s, /healthz p99 {probe.p99() * 1000:.1f} ms",
              "400 in < 1 s, /healthz answers")


def tiny_parts():
    body = b"".join(f"--B\r\nContent-Disposition: form-data; name=\"p{i}\"\r\n\r\n1\r\n".encode() for i in range(10_000))
    body += b"--B--\r\n"
    status, payload, seconds = post(body)
    check("10,000 tiny parts", status == 400 and payload.get("error") == "too_many_parts" and seconds < 1.0,
          f"{status} {payload.get('error')} in {seconds:.3f} s", "400 too_many_parts in < 1 s")


def big_urllib(megabytes):
    body = bytes(megabytes * 1_000_000)
    request = urllib.request.Request(f"http://{HOST}:{PORT}/v1/harmonize", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=B"})
    start = time.monotonic()
    try:
        urllib.request.urlopen(request, timeout=30)
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        status = f"no answer ({error})"
    seconds = time.monotonic() - start
    check(f"{megabytes} MB upload by urllib", status == 413 and seconds < 5.0, f"{status} in {seconds:.2f} s",
          "413 within 5 s")


def trickle(count, hold):
    """count connections each send headers and then one body byte a second; /healthz p99 meanwhile."""
    sockets = []
    for _ in range(count):
        s = socket.create_connection((HOST, PORT))
        s.sendall(b"POST /v1/harmonize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                  b"Content-Length: 1000000\r\n\r\n")
        sockets.append(s)
    stop = threading.Event()

    def drip():
        while not stop.is_set():
            for s in sockets:
                try:
                    s.send(b"-")
                except OSError:
                    pass
            time.sleep(1)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    start = time.monotonic()
    with HealthProbe() as probe:
        time.sleep(hold)
    p99 = probe.p99()
    check(f"{count} connections trickling 1 byte/s, {hold} s", p99 < 0.1 and probe.failures == 0,
          f"/healthz p99 {p99 * 1000:.1f} ms over {len(probe.latencies)} requests", "p99 < 100 ms")
    if time.monotonic() - start < READ_TIMEOUT + 3:
        time.sleep(READ_TIMEOUT + 3 - (time.monotonic() - start))
    closed = 0
    for s in sockets:
        s.settimeout(0.5)
        try:
            closed += s.recv(1) == b""
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
    stop.set()
    check(f"{count} trickling connections dropped at --read-timeout {READ_TIMEOUT} s", closed == count,
          f"{closed} of {count} closed after {time.monotonic() - start:.1f} s", f"all closed by {READ_TIMEOUT + 3} s")
    for s in sockets:
        s.close()


def big_job_body():
    width, height = 6000, 4000
    return form([("composite", png(width, height, 3)), ("mask", png(width, height, 1))])


def disconnect_mid_job(body, content_type):
    # the uncut job, for comparison
    status, _, uncut = post(body, content_type, timeout=120)
    before = metric("gknet_jobs_cancelled_total")
    s = socket.create_connection((HOST, PORT))
    s.sendall(f"POST /v1/harmonize HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    while metric("gknet_busy_workers") < 1:
        time.sleep(0.01)
    gone = time.monotonic()
    s.close()
    while metric("gknet_busy_workers") > 0:
        time.sleep(0.01)
    free = time.monotonic() - gone
    cancelled = metric("gknet_jobs_cancelled_total") - before
    check("client disconnects mid-job", status == 200 and cancelled == 1 and free < uncut,
          f"worker free {free:.2f} s after the disconnect (uncut job {uncut:.2f} s), cancelled {cancelled:.0f}",
          "job stopped at its next stage, sooner than the uncut job")


def sigterm_amid(process, body, content_type):
    sockets = []
    for _ in range(8):
        s = socket.create_connection((HOST, PORT))
        s.sendall(b"POST /v1/harmonize HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                  b"Content-Type: multipart/form-data; boundary=B\r\n\r\n--B")
        sockets.append(s)
    job = threading.Thread(target=lambda: _quiet(lambda: post(body, content_type, timeout=60)), daemon=True)
    job.start()
    while metric("gknet_busy_workers") < 1:
        time.sleep(0.01)
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=SHUTDOWN_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        code = "still running"
    seconds = time.monotonic() - start
    check("SIGTERM amid trickles and a running job", seconds < SHUTDOWN_TIMEOUT + 2 and code != "still running",
          f"exited ({code}) after {seconds:.2f} s", f"exits within --shutdown-timeout {SHUTDOWN_TIMEOUT} s + 2 s")
    for s in sockets:
        s.close()


def _quiet(function):
    try:
        function()
    except OSError:
        pass


def bench_parse():
    """Time to answer a form of one part of N bytes (no image: 400 missing_field after the whole body)."""
    rows = []
    for size in [1 << 10, 16 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, (32 << 20) - 4096]:
        for kind, filler in [("random", os.urandom(size)),
                             ("near-boundaries", (b"\r\n--gknetabusX" * (size // 15 + 1))[:size])]:
            body, content_type = form([("x", filler)])
            times = sorted(post(body, content_type)[2] for _ in range(5))
            rows.append((size, kind, times[2]))
            print(f"parse {size:>9} B {kind:<16} median {times[2] * 1000:8.2f} ms  "
                  f"{times[2] / size * 1e9:7.2f} ns/B", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gknet", default=str(ROOT / ".build" / "release" / "gknet"))
    parser.add_argument("--heavy", action="store_true", default=os.environ.get("ABUSE_HEAVY") == "1")
    parser.add_argument("--bench-parse", action="store_true")
    arguments = parser.parse_args()
    process, log = start_server(arguments.gknet)
    try:
        if arguments.bench_parse:
            bench_parse()
            return
        boundary_only([64 << 10, 1 << 20] + ([32 << 20] if arguments.heavy else []))
        tiny_parts()
        big_urllib(300 if arguments.heavy else 50)
        trickle(64 if arguments.heavy else 16, 10 if arguments.heavy else 5)
        body, content_type = big_job_body()
        disconnect_mid_job(body, content_type)
        sigterm_amid(process, body, content_type)
    finally:
        if process.poll() is None:
            process.kill()
    failed = [name for name, ok, _, _ in results if not ok]
    print(f"abuse_test: {len(results) - len(failed)} of {len(results)} cases passed (server log {log})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
