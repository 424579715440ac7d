#!/usr/bin/env python3
"""Load test of `gknet serve` with wrk on loopback (docs/benchmarks.md, "Serve").

    .venv-serve/bin/python Scripts/serve/load_test.py [--gknet .build/release/gknet] [--duration 60]
        [--connections 1,4,16] [--soak 600] [--workers 1,2] [--queue 4]

Each worker count in --workers is measured in turn on a fresh server, each worker with cores / workers
threads (gknet serve's default); the soak runs on the first.

Part 1, throughput: a 1024x768 JPEG composite (made from a bundled sample) and its mask, POSTed to
/v1/harmonize for --duration seconds at each connection count: requests/s, p50/p99 latency,
status counts, server RSS before and after; and the time of one request alone.
Part 2, soak (--soak seconds, 0 = skip): good uploads mixed with bad ones (truncated JPEG, empty
mask, mask of the wrong size, a GIF, a part missing) at the queue's edge (workers + queue + 2
connections): every status must be 200, 400, 415, 422 or 503; the server's RSS is sampled every
10 s and must stay within 10 % of its value after the first minute; /healthz must answer at the
end. Every request loop is bounded by wrk's duration. Exits non-zero when a check fails.
"""
import argparse
import io
import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "Samples" / "HGCompris"
BOUNDARY = "gknetloadtestboundary"


def multipart(fields):
    out = io.BytesIO()
    for name, data in fields:
        out.write(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n"
                  "Content-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_wrk(url, bodies, connections, duration, threads=2):
    env = dict(os.environ, BODIES=" ".join(str(p) for p in bodies), BOUNDARY=BOUNDARY)
    command = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{duration}s",
               "--timeout", "120s", "-s", str(ROOT / "Scripts" / "serve" / "load.lua"), url]
    output = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 180)
    output = output.stdout + output.stderr
    statuses = {int(code): int(count) for code, count in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
    def value(key):
        found = re.search(rf"^{key} ([\d.]+)$", output, re.M)
        if found is None:
            sys.exit(f"wrk printed no {key}; its output:\n{output}")
        return float(found.group(1))
    errors = re.search(r"Socket errors: (.*)$", output, re.M)
    return {"statuses": statuses, "p50_ms": value("latency_p50_ms"), "p99_ms": value("latency_p99_ms"),
            "requests": int(value("requests")), "duration_s": value("duration_s"),
            "socket_errors": errors.group(1) if errors else "none"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gknet", default=str(ROOT / ".build" / "release" / "gknet"))
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", default="1,4,16")
    parser.add_argument("--soak", type=int, default=600)
    parser.add_argument("--report", default=None, help="where to write the JSON report (default: the work folder)")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, each on a fresh server")
    parser.add_argument("--queue", type=int, default=4)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    work = pathlib.Path(tempfile.mkdtemp(prefix="gknet-load-"))

    composite = Image.open(SAMPLES / "composite_images" / "solar-cooker_1_1.jpg").convert("RGB").resize((1024, 768), Image.BICUBIC)
    mask = Image.open(SAMPLES / "masks" / "solar-cooker_1.png").convert("L").resize((1024, 768), Image.NEAREST)
    good_jpeg, good_mask = encoded(composite, "JPEG", quality=92), encoded(mask, "PNG")
    bodies = {
        "good": multipart([("composite", good_jpeg), ("mask", good_mask)]),
        "truncated": multipart([("composite", good_jpeg[: len(good_jpeg) // 2]), ("mask", good_mask)]),
        "empty_mask": multipart([("composite", good_jpeg), ("mask", encoded(Image.new("L", (1024, 768), 0), "PNG"))]),
        "wrong_size": multipart([("composite", good_jpeg), ("mask", encoded(mask.resize((512, 384)), "PNG"))]),
        "gif": multipart([("composite", encoded(composite.resize((64, 48)), "GIF")), ("mask", good_mask)]),
        "missing": multipart([("composite", good_jpeg)]),
    }
    paths = {}
    for name, body in bodies.items():
        paths[name] = work / f"{name}.body"
        paths[name].write_bytes(body)

    failures, reports = [], []
    for index, workers in enumerate(int(w) for w in args.workers.split(",")):
        reports.append(measure(args, url, bodies, paths, workers, args.soak if index == 0 else 0, failures))
    report_path = pathlib.Path(args.report) if args.report else work / "report.json"
    report_path.write_text(json.dumps(reports if len(reports) > 1 else reports[0], indent=2) + "\n")
    print(f"report: {report_path}")
    if failures:
        print("load test: FAILED: " + "; ".join(failures), file=sys.stderr)
        raise SystemExit(1)
    print("load test: passed")


def measure(args, url, bodies, paths, workers, soak, failures):
    """One server with `workers` workers: a request alone, wrk at each connection count, then the soak."""
    server = subprocess.Popen([args.gknet, "serve", "--port", str(args.port), "--workers", str(workers),
                               "--queue", str(args.queue), "--timeout", "120"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    threads = max(1, (os.cpu_count() or 1) // workers)
    print(f"workers {workers} x {threads} thread(s)")
    report = {"machine": os.uname().release, "cores": os.cpu_count(), "workers": workers, "threads": threads,
              "queue": args.queue}
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        # one request alone, five times
        singles = []
        for _ in range(5):
            start = time.time()
            request = urllib.request.Request(url + "/v1/harmonize", data=bodies["good"], method="POST",
                                             headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
            singles.append(time.time() - start)
        report["single_request_s"] = round(statistics.median(singles), 3)
        print(f"one request alone: {report['single_request_s']} s (median of 5), server RSS {rss_mb(server.pid):.0f} MB")
        report["throughput"] = []
        for connections in [int(c) for c in args.connections.split(",")]:
            before = rss_mb(server.pid)
            result = run_wrk(url, [paths["good"]], connections, args.duration)
            result.update(connections=connections, rss_before_mb=round(before), rss_after_mb=round(rss_mb(server.pid)),
                          requests_per_s=round(result["requests"] / result["duration_s"], 2))
            report["throughput"].append(result)
            print(json.dumps(result))
            if any(code >= 500 and code != 503 for code in result["statuses"]):
                failures.append(f"{connections} connections: 5xx statuses {result['statuses']}")
        if soak > 0:
            connections = workers + args.queue + 2
            mixed = [paths[name] for name in ["good", "truncated", "good", "empty_mask", "good", "wrong_size", "gif", "missing"]]
            samples = []
            wrk = subprocess.Popen(
                ["wrk", "-t", "2", "-c", str(connections), "-d", f"{soak}s", "--timeout", "120s",
                 "-s", str(ROOT / "Scripts" / "serve" / "load.lua"), url],
                env=dict(os.environ, BODIES=" ".join(str(p) for p in mixed), BOUNDARY=BOUNDARY),
                stdout=subprocess.PIPE, text=True)
            start = time.time()
            while wrk.poll() is None and time.time() - start < soak + 200:
                time.sleep(10)
                samples.append((round(time.time() - start), round(rss_mb(server.pid), 1)))
            output = wrk.communicate(timeout=200)[0]
            statuses = {int(c): int(n) for c, n in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
            settled = [rss for t, rss in samples if t >= 60] or [rss for _, rss in samples]
            growth = (settled[-1] - settled[0]) / settled[0] if settled else float("nan")
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                healthy = response.status == 200
            report["soak"] = {"seconds": soak, "connections": connections, "statuses": statuses,
                              "rss_samples_mb": samples, "rss_growth_after_first_minute": round(growth, 4), "healthz": healthy}
            print(json.dumps({k: v for k, v in report["soak"].items() if k != "rss_samples_mb"}))
            unexpected = {code: n for code, n in statuses.items() if code not in (200, 400, 415, 422, 503)}
            if unexpected:
                failures.append(f"soak: unexpected statuses {unexpected}")
            if not growth < 0.10:
                failures.append(f"soak: RSS grew {growth:.1%} after the first minute")
            if not healthy:
                failures.append("soak: /healthz did not answer 200 at the end")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed"
        report["exit_status_after_sigterm"] = code
    if server.returncode not in (0,):
        failures.append(f"workers {workers}: server exit status {server.returncode} after SIGTERM")
    return report


if __name__ == "__main__":
    main()
