"""Load test of the app serving the demo, with locust, on 127.0.0.1 only, bounded in time, while a training job runs.

    python -m benchmarks.load_test                       # the full profile: 50 users for 3 minutes
    python -m benchmarks.load_test --users 8 --seconds 30  # a short one

The app (AppService on the demo preset, checkpoints copied to a temporary folder so nothing under checkpoints/
changes) runs in its own process; a training job owned by one browser session trains on Genesis 1 for the whole
test. Locust's users (benchmarks/locustfile.py): visitors predicting greedily and sampled, redrawing attention,
comparing and reading evaluation results; the job's owner polling its progress; an intruder trying to stop and
download the owner's run (every attempt must be refused). Printed: requests, failures, queue-full answers, median
and p95 per endpoint, the server's RSS at start and end, whether the job survived, and the load average.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

from tall_app.sessions import IDLE_SECONDS
from tall_model.config import REPO_ROOT
from tall_model.memory import allocator_stats

OWNER_SESSION = "loadtest-owner"
RUN = "owner-run"


def serve(port: int, tmp: Path) -> None:
    """The server process: the app on the demo preset, a training job owned by OWNER_SESSION, status.json."""
    from tall_app.blocks import build_app, launch  # noqa: PLC0415 -- only the server process needs Gradio
    from tall_app.owners import owner_key  # noqa: PLC0415 -- idem
    from tall_app.screenshots import copy_shipped, write_corpus  # noqa: PLC0415 -- idem
    from tall_app.service import AppService  # noqa: PLC0415 -- idem

    copy_shipped(tmp / "checkpoints")
    svc = AppService("demo", root=tmp / "checkpoints",
                     train_options={"translation_cache": str(tmp / "translations.sqlite")})
    corpus = write_corpus(tmp / "genesis-1.txt", verses=31)
    svc.train_start(str(corpus), RUN, "demo", epochs=100, batch_size=2, eval_every=0,
                    owner=owner_key(None, OWNER_SESSION))
    for mode in ("greedy", "sampling"):  # warm up (models loaded, caches filled) before RSS is measured
        svc.predict("ויאמר אלהים יהי", "demo", "demo/tall", mode)
    svc.compare("ויאמר אלהים יהי", "demo", "demo/tall")
    svc.results("demo/tall")
    blocks = build_app(service=svc)
    idle = float(os.environ.get("TALL_LOAD_SESSION_IDLE") or IDLE_SECONDS)
    launch(blocks, "127.0.0.1", port, prevent_thread_lock=True, quiet=True, session_idle_seconds=idle)
    stop, dumps = [], []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGUSR1, lambda *a: dumps.append(1))
    tracing = os.environ.get("TALL_LOAD_TRACEMALLOC") == "1"
    if tracing:  # Python-level allocations (tensors' storage is not traced): a leak of objects shows here
        tracemalloc.start(1)
        baseline = tracemalloc.take_snapshot()
    print("READY", flush=True)
    while not stop:
        snap = svc.train_snapshot()
        (tmp / "status.json").write_text(json.dumps({
            "state": snap.state, "step": snap.step, "run": snap.run_name, "error": snap.error,
            "message": snap.message, "sessions": len(blocks.state_holder.session_data),
            "sessions_dropped": blocks.sweeper.dropped,
            "allocator": allocator_stats(), "traced": tracemalloc.get_traced_memory()[0] if tracing else None}))
        if dumps:  # the driver asks for the top Python-level growth since the start
            dumps.clear()
            top = tracemalloc.take_snapshot().compare_to(baseline, "lineno")[:15] if tracing else []
            (tmp / "trace.txt").write_text("\n".join(str(t) for t in top))
        time.sleep(1)
    svc.jobs.stop()
    svc.jobs.wait(120)
    blocks.close()


def read_stats(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=5)
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--rounds", type=int, default=1, help="locust runs back to back on one server (memory)")
    parser.add_argument("--warmup-seconds", type=int, help="length of the first round when --rounds > 1 (a warm-up "
                        "round whose end is the start of the memory measurement); default --seconds")
    parser.add_argument("--session-idle", type=float, help="seconds without a request after which the server drops "
                        "a session (the app's default: tall_app.sessions.IDLE_SECONDS)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.tmp)
    from tall_app.blocks import free_port  # noqa: PLC0415 -- keeps the server's imports out of this process

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TALL_LOAD_OWNER_SESSION": OWNER_SESSION, "TALL_LOAD_RUN": RUN,
           "TALL_LOAD_SESSION_IDLE": str(args.session_idle or "")}
    with tempfile.TemporaryDirectory(prefix="tall-load-") as tmp_name:
        tmp = Path(tmp_name)
        # every output goes to files: a pipe nobody reads fills up and blocks the writer (locust prints its table
        # every 2 s)
        server_log = (tmp / "server.log").open("w")
        server = subprocess.Popen([sys.executable, "-m", "benchmarks.load_test", "--serve", str(port), "--tmp", tmp],
                                  cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=server_log, text=True)
        try:
            assert server.stdout.readline().strip() == "READY", "the server did not start"
            proc = psutil.Process(server.pid)
            rss_start, rss_peak, rss_rounds = proc.memory_info().rss, 0, []
            print(memory_line("after warm-up", rss_start, tmp), flush=True)
            for round_ in range(args.rounds):  # back to back on one server: a plateau or a leak?
                peak, end = run_locust(args, url, env, tmp, proc, round_)
                rss_peak, rss_rounds = max(rss_peak, peak), rss_rounds + [end]
                print(memory_line(f"after round {round_ + 1}", end, tmp), flush=True)
                print_trace(server, tmp)
            rss_end = rss_rounds[-1]
            rows = read_stats(tmp / f"locust{args.rounds - 1}")
            errors = "".join((tmp / f"locust{r}.log").read_text() for r in range(args.rounds))
            status = json.loads((tmp / "status.json").read_text())
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(150)
            except subprocess.TimeoutExpired:
                server.kill()
    report(rows, args, rss_start, rss_peak, rss_end, status, errors)
    if args.rounds > 1:
        print("server RSS after each round: " + ", ".join(f"{r / 2**20:.0f} MiB" for r in rss_rounds)
              + f" (last round {100 * (rss_rounds[-1] - rss_rounds[-2]) / rss_rounds[-2]:+.1f} % over the one before)")


def memory_line(when: str, rss: int, tmp: Path) -> str:
    """The server's RSS beside glibc's account of its heap and the number of sessions Gradio holds."""
    time.sleep(1.5)  # status.json is rewritten every second
    status = json.loads((tmp / "status.json").read_text())
    alloc, mib = status.get("allocator") or {}, lambda b: f"{b / 2**20:.0f} MiB"
    parts = [f"server {when}: RSS {mib(rss)}",
             f"{status['sessions']} sessions held ({status['sessions_dropped']} dropped)"]
    if alloc:
        parts.append(f"malloc in use {mib(alloc['in_use'])}, freed but held {mib(alloc['free_held'])}, "
                     f"mmapped {mib(alloc['mmapped'])}")
    if status.get("traced") is not None:
        parts.append(f"Python objects traced {mib(status['traced'])}")
    return "; ".join(parts)


def print_trace(server, tmp: Path) -> None:
    if os.environ.get("TALL_LOAD_TRACEMALLOC") != "1":
        return
    server.send_signal(signal.SIGUSR1)
    time.sleep(20)  # a snapshot of a big heap takes a while
    if (tmp / "trace.txt").exists():
        print("tracemalloc, growth since the warm-up (top lines):\n" + (tmp / "trace.txt").read_text(), flush=True)


def run_locust(args, url: str, env: dict, tmp: Path, proc, round_: int) -> tuple[int, int]:
    """One locust run of args.seconds (the warm-up round: args.warmup_seconds) against the server; (peak RSS during
    it, RSS at its end)."""
    seconds = args.warmup_seconds if round_ == 0 and args.rounds > 1 and args.warmup_seconds else args.seconds
    locust = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "benchmarks" / "locustfile.py"), "--headless",
         "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{seconds}s", "--host", url,
         "--csv", str(tmp / f"locust{round_}"), "--stop-timeout", "30", "--loglevel", "WARNING"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(tmp / f"locust{round_}.log").open("w"))
    deadline, peak = time.monotonic() + seconds + 120, 0
    while locust.poll() is None:
        peak = max(peak, proc.memory_info().rss)
        if time.monotonic() > deadline:
            locust.kill()
        time.sleep(2)
    return peak, proc.memory_info().rss


def report(rows, args, rss_start, rss_peak, rss_end, status, errors) -> None:
    print(f"locust: {args.users} users (1 job owner, 1 intruder), {args.seconds} s, spawn rate {args.spawn_rate}/s; "
          f"load average at the end {os.getloadavg()}")
    print("| endpoint | requests | failures | median ms | p95 ms | max ms |\n|---|---|---|---|---|---|")
    for row in rows:
        if row["Name"] in ("Aggregated",) or row["Type"] in ("GET", "POST") and row["Name"] != "config":
            continue
        print(f"| {row['Name']} | {row['Request Count']} | {row['Failure Count']} | "
              f"{float(row['Median Response Time']):.0f} | {row['95%']} | {float(row['Max Response Time']):.0f} |")
    joins = [r for r in rows if r["Name"].endswith("(join)")]
    print(f"HTTP joins: {sum(int(r['Request Count']) for r in joins)}, failed {sum(int(r['Failure Count']) for r in joins)}")
    growth = 100 * (rss_end - rss_start) / rss_start
    print(f"server RSS: start {rss_start / 2**20:.0f} MiB, peak {rss_peak / 2**20:.0f} MiB, end "
          f"{rss_end / 2**20:.0f} MiB ({growth:+.1f} %)")
    print(f"training job at the end: {status}")
    if errors.strip():
        print("locust stderr (last lines):\n" + "\n".join(errors.strip().splitlines()[-15:]))


if __name__ == "__main__":
    main()
