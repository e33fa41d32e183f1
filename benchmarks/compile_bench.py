"""Compile throughput: lines per second for parse + check + optimize + emit.

Generates a .dsql file of about 10,000 lines (workflows of SQL steps with joins, conditions,
loops, named results, sleeps, signals and HTTP calls; every statement text distinct, so the
per-text caches only help where a real file would repeat itself) and compiles it several times
in a fresh process state. Reports the best and the median of the runs, in wall-clock and in
CPU time (the steadier number on a shared machine), and with ``--stages`` the CPU time of each
stage of the best run. Run:

    .venv/bin/python benchmarks/compile_bench.py [--lines 10000] [--repeat 5] [--stages] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from itertools import pairwise

from compiler import collector, refs, sqlshape
from compiler.api import compile_text
from compiler.checker import RULES
from compiler.checker.context import CheckContext
from compiler.diagnostics import DiagnosticSink
from compiler.emit import emit_plan
from compiler.lower import lower
from compiler.optimizer import optimize
from compiler.parser import parse
from compiler.source import SourceFile

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
    sqlshape.constant_of.cache_clear()


def print_stages(text: str, repeat: int) -> None:
    """The best CPU time of each stage over ``repeat`` runs, run as the pipeline runs them."""
    stages: dict[str, list[float]] = {}
    for _ in range(repeat):
        clear_caches()
        with collector.paused():
            clock = time.process_time
            marks = [("start", clock())]
            source = SourceFile("bench.dsql", text)
            sink = DiagnosticSink()
            parsed = parse(source, sink)
            marks.append(("parse + lower", clock()))
            program = lower(parsed)  # the parser's reductions built the IR: this collects it
            marks.append(("name workflows", clock()))
            context = CheckContext.create(program, parsed, sink)
            for workflow in program.workflows:  # the rules' shared index (else in the first)
                context.steps(workflow)
            marks.append(("check: index + scan", clock()))
            for rule in RULES:
                rule(context)
                marks.append((f"check: {rule.__module__.rsplit('.', 1)[-1]}", clock()))
            optimized = optimize(program, [])
            marks.append(("optimize", clock()))
            declared = optimized.variables
            for workflow in optimized.workflows:
                emit_plan(workflow, optimized, declared)
            marks.append(("emit", clock()))
        for (_, before), (name, after) in pairwise(marks):
            stages.setdefault(name, []).append(after - before)
    print("cpu per stage (best of the runs):")
    for name, timings in stages.items():
        print(f"  {name:<22}{min(timings) * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stages", action="store_true", help="CPU time per stage")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    text = generate(args.lines)
    lines = text.count("\n")
    compile_text("'SELECT 1'", "warmup.dsql")  # grammar and catalogue load once per process
    walls: list[float] = []
    cpus: list[float] = []
    result = compile_text(text, "bench.dsql")
    for _ in range(args.repeat):
        clear_caches()
        # Free the previous run's output first: its clean-up is not part of this compilation.
        result = compile_text("", "empty.dsql")
        start, start_cpu = time.perf_counter(), time.process_time()
        result = compile_text(text, "bench.dsql")
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
        assert not result.has_errors, result.diagnostics[:3]
    workflows = len(result.plans)
    nodes = sum(len(p["nodes"]) for p in result.plans)
    print(f"{lines} lines, {workflows} workflows, {nodes} plan nodes, {args.repeat} runs")
    for name, timings in (("wall", walls), ("cpu", cpus)):
        best, median = min(timings), sorted(timings)[len(timings) // 2]
        print(
            f"{name:>4}: best {best:.3f} s = {lines / best:,.0f} lines/s; "
            f"median {median:.3f} s = {lines / median:,.0f} lines/s (cold caches each run)"
        )
    if args.stages:
        print_stages(text, args.repeat)
    if args.profile:
        clear_caches()
        profile = cProfile.Profile()
        profile.enable()
        compile_text(text, "bench.dsql")
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
