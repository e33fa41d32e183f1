"""Front-end throughput: lines per second for parsing alone and for parsing plus lowering.

Generates a realistic .dsql file (labelled workflows with sequences, joins, races, ifs, loops,
HTTP calls, named results, comments, every string form) of about 10,000 lines, then times
``compiler.parser.parse`` (lexing and the LALR automaton, whose reductions build the IR) and
``compiler.api.front_end`` (that, plus naming the workflows and collecting the diagnostics) on
it: the best and the median of N runs, in wall-clock and in CPU time.

    .venv/bin/python benchmarks/parse_bench.py [--lines 10000] [--runs 5] [--write FILE]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from compiler.api import front_end
from compiler.parser import lark_parser, parse
from compiler.source import SourceFile

_TEMPLATES = [
    """-- nightly load {n}
SELECT df.start(
    'DELETE FROM facts_{n}
     WHERE loaded_at < now() - interval ''30 days'''          -- prune
    ~> 'UPDATE landing_{n} SET picked_at = now() WHERE picked_at IS NULL'
    ~> 'INSERT INTO facts_{n} (doc) SELECT doc FROM landing_{n} WHERE picked_at IS NOT NULL',
    'nightly-load-{n}'
);
""",
    """SELECT df.start(
    $$SELECT id, total FROM orders WHERE id = {n}$$ |=> 'ord'
    ~> ('SELECT reserve({n})' & df.http('https://hooks.example.org/o/{n}', 'POST',
                                       '{{"order": "$ord.id"}}') |=> 'hook')
    ~> (df.wait_for_signal('paid_{n}', 86400) | df.wait_for_signal('failed_{n}')) |=> 'pay'
    ~> ('$pay.signal_name = ''paid_{n}'''
            ?> 'UPDATE orders SET state = ''done'' WHERE id = $ord.id'
            !> 'UPDATE orders SET state = ''void'' WHERE id = $ord.id'),
    'order-{n}'
);
""",
    """/* monitor {n} */
SELECT df.start(
    @> (
        df.wait_for_schedule('*/5 * * * *', 'Europe/Paris')
        ~> df.http('https://svc{n}.example.org/health', 'GET', NULL,
                   '{{"Accept": "application/json"}}'::jsonb, 10) |=> 'h'
        ~> df.if('SELECT ($h.body)::jsonb->>''ok'' = ''false''',
                 E'INSERT INTO alerts (msg) VALUES (''down\\n{n}'')',
                 'SELECT 1')
    ),
    'monitor-{n}'
);
""",
    """SELECT df.setvar('api_{n}', 'https://api.example.org/{n}');
df.retry(df.http('{{api_{n}}}/sync', 'POST'), 5, 0.5)
    ~> df.timeout('SELECT long_job({n})', 300)
    ~> df.with_undo('SELECT reserve({n})', 'SELECT release({n})')
    ~> 'SELECT charge({n})' <-> 'SELECT refund({n})';
""",
    """SELECT df.start(
    df.loop(
        'SELECT run_batch({n})' |=> 'b'
        ~> ('$b.finished' ?> df.break('{{"rows": $b.rows}}') !> df.sleep(5)),
        'SELECT more_work({n})'
    ),
    'batch-{n}', database => 'tenant_{n}', transaction_mode => 'new'
);
""",
]


def generate(lines: int, seed: int = 7) -> str:
    """A file of about ``lines`` lines made of the templates above."""
    rng = random.Random(seed)
    parts: list[str] = []
    count = 0
    n = 0
    while count < lines:
        block = rng.choice(_TEMPLATES).format(n=n)
        parts.append(block)
        count += block.count("\n")
        n += 1
    return "".join(parts)


def timings(runs: int, action: Callable[[], object]) -> tuple[list[float], list[float]]:
    """The sorted wall-clock and CPU times of ``runs`` runs, in seconds.

    CPU time is the steadier number on a shared machine. The previous run's result is freed
    before the next is timed.
    """
    walls: list[float] = []
    cpus: list[float] = []
    held: list[object] = []  # the last result, so that freeing it is not timed
    for _ in range(runs):
        held.clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        held.append(action())
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return sorted(walls), sorted(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", help="also write the generated file here")
    args = parser.parse_args()

    text = generate(args.lines)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write(text)
    lines = text.count("\n")

    start = time.perf_counter()
    lark_parser()
    load = time.perf_counter() - start

    check = front_end(text, "bench.dsql")
    errors = [d for d in check.diagnostics if d.is_error]
    if errors:
        raise SystemExit(f"the generated file has errors: {errors[0]}")

    source = SourceFile("bench.dsql", text)
    stages = [
        ("parse (lex + LALR + IR)", timings(args.runs, lambda: parse(source))),
        ("front end", timings(args.runs, lambda: front_end(text, "bench.dsql"))),
    ]
    print(f"{lines} lines, {len(text):,} characters, {len(check.program.statements)} statements")
    print(f"grammar load (once per process): {load * 1000:.0f} ms")
    print(f"{args.runs} runs; best and median")
    print(f"{'stage':<22}{'':>6}{'wall':>10}{'lines/s':>10}{'cpu':>10}{'lines/s':>10}")
    for name, (walls, cpus) in stages:
        for which, index in (("best", 0), ("median", len(walls) // 2)):
            wall, cpu = walls[index], cpus[index]
            print(
                f"{name if index == 0 else '':<22}{which:>6}{wall * 1000:>7.0f} ms"
                f"{lines / wall:>10,.0f}{cpu * 1000:>7.0f} ms{lines / cpu:>10,.0f}"
            )


if __name__ == "__main__":
    main()
