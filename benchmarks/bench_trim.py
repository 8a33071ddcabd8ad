"""What handing free memory back to the system costs a prediction (tall_model.memory, called by AppService after
each heavy request): the demo's predictions through AppService.predict in interleaved pairs, one with the trim
after it (its own time included) and one without, from two threads at once as the app's two predict workers run,
so glibc's arenas fill as they do under load. Printed: median and p95 request time each way, the trim's own time,
and the process's RSS after each half.

    python -m benchmarks.bench_trim --pairs 12
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import psutil  # noqa: E402

from tall_app.predicting import parse_decoding, run_prediction  # noqa: E402
from tall_app.service import AppService  # noqa: E402
from tall_model.memory import limit_arenas, release_free_memory  # noqa: E402

PREFIXES = ["ויהי דבר יהוה אל יונה בן אמתי", "ויאמר אלהים יהי", "בראשית ברא אלהים את השמים ואת",
            "ויהי בימי שפט השפטים ויהי רעב", "שיר השירים אשר"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=12)
    args = parser.parse_args(argv)
    limit_arenas(2)  # as tall_app.blocks.launch does
    svc = AppService("demo")
    svc.trim.min_interval = 0.0  # this benchmark decides when to trim
    process = psutil.Process()
    trim_times: list[float] = []

    def request(i: int, trim: bool) -> float:
        start = time.perf_counter()
        out = svc.cache.get("demo", "demo/tall")  # the model is shared, as in the app
        run_prediction(out, PREFIXES[i % len(PREFIXES)], parse_decoding("sampling", 0.7, 50, 0.95, i))
        if trim:
            t0 = time.perf_counter()
            release_free_memory()
            trim_times.append(time.perf_counter() - t0)
        return time.perf_counter() - start

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: request(i, False), range(4)))  # warm-up: models loaded
        times = {False: [], True: []}
        for i in range(args.pairs):
            for trim in ((False, True) if i % 2 else (True, False)):
                times[trim] += list(pool.map(lambda j, t=trim: request(j, t), (2 * i, 2 * i + 1)))
    for trim in (False, True):
        t = sorted(times[trim])
        print(f"{'with' if trim else 'without'} trim: {len(t)} predictions, median {statistics.median(t):.3f} s, "
              f"p95 {t[int(0.95 * (len(t) - 1))]:.3f} s")
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(f"ratio with/without {ratio:.3f}; malloc_trim(0) itself: median {1000 * statistics.median(trim_times):.1f} "
          f"ms, max {1000 * max(trim_times):.1f} ms; RSS at the end {process.memory_info().rss / 2**20:.0f} MiB; "
          f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
