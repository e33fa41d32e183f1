"""Compile throughput: lines per second for parse + check + optimize + emit.

Generates a .dsql file of about 10,000 lines (workflows of SQL steps with joins, conditions,
loops, named results, sleeps, signals and HTTP calls; every statement text distinct, so the
per-text caches only help where a real file would repeat itself) and compiles it several times
in a fresh process state. Run:

    .venv/bin/python benchmarks/compile_bench.py [--lines 10000] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from compiler import refs, sqlshape
from compiler.api import compile_text

TEMPLATE = """-- workflow {i}: load, check, notify
SELECT df.start(
    'SELECT id, amount_{i} AS amount, status FROM orders_{i} WHERE id = {i}' |=> 'o{i}'
    ~> ('SELECT count(*) AS n FROM lines_{i} WHERE order_id = $o{i}.id' |=> 'lines{i}'
        & 'UPDATE stock_{i} SET reserved = reserved + 1 WHERE sku = ''{i}'' RETURNING sku'
          |=> 'stock{i}')
    ~> ('SELECT $o{i}.amount > {i} AND $lines{i}.n > 0'
        ?> 'INSERT INTO approvals (order_id, level) VALUES ($o{i}.id, 2) RETURNING id'
        !> 'INSERT INTO approvals (order_id, level) VALUES ($o{i}.id, 1) RETURNING id')
    ~> df.wait_for_signal('approve_{i}', 3600) |=> 'sig{i}'
    ~> df.loop('SELECT status AS s FROM jobs WHERE id = {i} AND note = $sig{i}.data?' |=> 'job{i}'
               ~> df.sleep(10), 'SELECT $job{i}.s <> ''done''')
    ~> df.http('https://hooks.example.com/orders/{i}', 'POST', '{{"order": "$o{i}.id"}}')
    ~> 'SELECT $stock{i}.sku, {{region}} AS region',
    'order_flow_{i}'
);
"""


def generate(lines: int) -> str:
    parts = ["SELECT df.setvar('region', 'eu');\n"]
    count = 1
    i = 0
    while count < lines:
        block = TEMPLATE.format(i=i)
        parts.append(block)
        count += block.count("\n")
        i += 1
    return "".join(parts)


def clear_caches() -> None:
    refs.scan_sql.cache_clear()
    refs.scan_text.cache_clear()
    sqlshape.analyse.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    text = generate(args.lines)
    lines = text.count("\n")
    compile_text("'SELECT 1'", "warmup.dsql")  # grammar and catalogue load once per process
    timings = []
    for _ in range(args.repeat):
        clear_caches()
        start = time.perf_counter()
        result = compile_text(text, "bench.dsql")
        timings.append(time.perf_counter() - start)
        assert not result.has_errors, result.diagnostics[:3]
    best = min(timings)
    workflows = len(result.plans)
    nodes = sum(len(p["nodes"]) for p in result.plans)
    print(f"{lines} lines, {workflows} workflows, {nodes} plan nodes")
    print(
        f"best {best:.3f} s = {lines / best:,.0f} lines/s; "
        f"median {sorted(timings)[len(timings) // 2]:.3f} s (cold caches each run)"
    )
    if args.profile:
        clear_caches()
        profile = cProfile.Profile()
        profile.enable()
        compile_text(text, "bench.dsql")
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
