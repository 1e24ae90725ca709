"""`python -m bench.profile PATH [PATH ...]`: where one view's time goes (pyinstrument).

Run by bench/run.py, for a missed target only, with the environment of the
gunicorn instance that missed it (bench.settings, the same database, cache and
sandbox) and the benchmark's cookies in BENCH_SESSION and BENCH_CSRFTOKEN.
Each path is requested through Django's full handler and middleware in this
one process, after a warm-up; the printout is pyinstrument's call tree of the
measured requests.
"""

from __future__ import annotations

import argparse
import os
import sys

# Requests profiled per path: enough for stable shares at pyinstrument's 1 ms sampling.
PROFILED_REQUESTS = 300
# Requests sent first, unprofiled: imports, template loading, connections.
WARMUP_REQUESTS = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--requests", type=int, default=PROFILED_REQUESTS)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.test import Client
    from pyinstrument import Profiler

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = os.environ["BENCH_SESSION"]
    client.cookies["csrftoken"] = os.environ["BENCH_CSRFTOKEN"]
    for path in args.paths:
        for _ in range(WARMUP_REQUESTS):
            answer = client.get(path)
            if answer.status_code != 200:
                print(f"{path}: HTTP {answer.status_code}", file=sys.stderr)
                return 1
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(args.requests):
            client.get(path)
        profiler.stop()
        print(f"=== {path} x {args.requests}: call tree (seconds, all requests)")
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
