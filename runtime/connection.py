"""Connections to PostgreSQL: where the DSN comes from and how sessions are configured.

Worker sessions pin the settings the worker relies on (``search_path``, ``TimeZone``, …) as
connection options, so that ``RESET ALL`` after a step returns to them. JSON numbers are read
as ``Decimal`` to keep numeric values exact.

Worker sessions are :class:`WorkerConnection` objects, which let the store hold back writes whose
results nobody reads until the next statement or the end of the transaction, and send them as one
``df._apply`` call in the same round trip: a step costs two or three round trips instead of one per
statement.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, cast

import psycopg
import psycopg.errors
from psycopg import ClientCursor, Transaction, generators
from psycopg.pq import Escaping, ExecStatus, TransactionStatus
from psycopg.rows import TupleRow
from psycopg.types.json import Json, Jsonb, set_json_dumps, set_json_loads

from runtime.jsonvalues import dumps
from runtime.queries import query

# libpq's environment variables that name a server on their own.
_LIBPQ_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")

WORKER_OPTIONS = (
    "-c search_path=pg_catalog,pg_temp -c TimeZone=UTC -c DateStyle=ISO,YMD "
    "-c IntervalStyle=postgres -c df.in_workflow=true"
)

# Raised by df._run_chained_step for a step of a chain that it did not take (or, when the
# sequence was gone, took back: the step had passed df._run_step_task's checks).
CHAIN_STEP_NOT_TAKEN = "DFC01"
# Set before a chain's first step when it runs in the transaction that created its task.
FIRST_STEP_SAVEPOINT = b"dfc_chain"

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class _Template:
    """A named query split at its ``%(name)s`` placeholders, for WorkerConnection.bind."""

    parts: list[bytes]  # text, placeholder, text, …: placeholders at odd indexes
    names: list[str]  # the placeholder at each occurrence
    order: list[str]  # parameter names in order of first occurrence ($1, $2, …)
    prepared: bytes  # the text with $n placeholders, for PREPARE
    execute: bytes  # b"EXECUTE dfc_<name>(", once prepared


@cache
def _template(name: str) -> _Template:
    pieces = _PLACEHOLDER.split(query(name).as_string().replace("%%", "\0"))
    names = pieces[1::2]
    order = list(dict.fromkeys(names))
    texts = [piece.replace("\0", "%").encode() for piece in pieces[0::2]]
    parts: list[bytes] = []
    prepared = [texts[0]]
    for index, key in enumerate(names):
        prepared += [f"${order.index(key) + 1}".encode(), texts[index + 1]]
    for index, text in enumerate(texts):
        parts.append(text)
        if index < len(names):
            parts.append(names[index].encode())
    text = b"".join(prepared).rstrip().rstrip(b";")
    # without its leading comment lines: the session's statements are listed (their text
    # included) by the prepared-statement guard around every step
    while text.startswith(b"--"):
        text = text.partition(b"\n")[2].lstrip()
    return _Template(parts, names, order, text, b"EXECUTE dfc_" + name.encode() + b"(")


def dsn_from_environment(explicit: str | None = None) -> str | None:
    """The DSN to use: ``explicit``, ``DFC_DSN``, ``DATABASE_URL``, or libpq's ``PG*``
    variables (returned as ``""``). None means no server was named."""
    if explicit:
        return explicit
    for name in ("DFC_DSN", "DATABASE_URL"):
        value = os.environ.get(name)
        if value:
            return value
    if any(os.environ.get(name) for name in _LIBPQ_ENV):
        return ""
    return None


_DECODER = json.JSONDecoder(parse_float=Decimal)


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def fast_loads(data: str | bytes) -> Any:
    """runtime.jsonvalues.loads with one decoder for all calls."""
    return _DECODER.decode(data if isinstance(data, str) else data.decode())


# json.dumps with arguments builds an encoder per call (several microseconds, more than most
# values take to encode); one C encoder does for all. No circular check: its memo would be
# shared by every call and keep the entries of a call stopped by a Decimal (values here come
# from JSON text and are never circular).
_make_encoder: Callable[..., Callable[[Any, int], Any]] | None = \
    getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (_make_encoder(None, _refuse, getattr(json.encoder, "c_encode_basestring", None), None,
                         ":", ",", False, False, False)
           if _make_encoder is not None else None)


def fast_dumps(value: Any) -> str:
    """runtime.jsonvalues.dumps, the same text, from the C encoder when the value holds no
    Decimal or non-finite float (those take the exact path)."""
    try:
        if _ENCODE is not None:
            return "".join(_ENCODE(value, 0))
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=_refuse)
    except (TypeError, ValueError):
        return dumps(value)


def configure(conn: psycopg.Connection[Any]) -> None:
    set_json_loads(fast_loads, conn)
    set_json_dumps(fast_dumps, conn)


def connect(dsn: str, *, worker: bool = False, application_name: str = "dfc",
            statement_timeout_ms: int = 0) -> psycopg.Connection[Any]:
    """An autocommit connection; ``worker`` sessions get the worker's pinned settings, including
    the statement_timeout every step runs with."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": application_name,
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    if worker:
        kwargs["options"] = f"{WORKER_OPTIONS} -c statement_timeout={int(statement_timeout_ms)}"
        worker_conn = WorkerConnection.connect(dsn, **kwargs)
        worker_conn.chain = True  # a worker goes on to its next claim right after a commit
        conn: psycopg.Connection[Any] = worker_conn
    else:
        conn = psycopg.connect(dsn, **kwargs)
    configure(conn)
    return conn


class _FirstMessageFailed(Exception):
    """The first of two messages (NextStep.rest) stopped at ``error``."""

    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class NextStep:
    """The step a worker goes on with, run by the message that commits the one before."""

    after: int  # the task of the step being committed (deleted by it)
    task_id: int  # the next step's task (inserted by it)
    statement: bytes  # the next step's run_step statement, which also locks its task
    # A chain (runtime.chains): the statements of the steps run before that one, each step in
    # its own transaction of the same message (its statements, then COMMIT and BEGIN), and their
    # tasks; the last of them creates ``task_id``.
    chained: tuple[bytes, ...] = ()
    chain: tuple[int, ...] = ()
    # The chain's first step runs in the transaction being committed (the start or timer that
    # created it), under a savepoint, instead of after its commit: ``after`` is then the task
    # that transaction took, and the first step's failure keeps the rest of it. The failed
    # step's task is then held back from other workers until ``held_until`` (as the tasks a
    # chain creates are), so that this worker records the failure.
    in_transaction: bool = False
    held_until: datetime | None = None
    # With ``in_transaction``: the first message holds only the transaction being committed
    # and the chain's first step (``chained``; no ``statement``), and ``rest`` plans the rest
    # of the chain while the server runs it (it must send no statement of its own): the step
    # to go on with that the second message runs, in the transaction the first one opened.
    rest: Callable[[], NextStep] | None = None


class WorkerConnection(psycopg.Connection[TupleRow]):
    """A worker session that packs a step's statements into few round trips.

    * Inside a ``transaction()`` block the store may :meth:`hold` a write (an operation of
      ``df._apply``, see ``sql/schema.sql``) instead of executing it. Held writes travel as one
      ``df._apply`` call in front of the store's next statement in one simple-protocol message,
      or with the block's ``COMMIT``. Writes keep their order; only their packaging changes. A
      nested block (a savepoint) first sends what was held before it; a block that fails drops
      what was held inside it, as PostgreSQL drops the effects.
    * With :attr:`chain` set, a commit also opens the next transaction (``COMMIT; BEGIN``), which
      the next ``transaction()`` block adopts instead of sending ``BEGIN`` again. The open,
      still empty transaction holds no snapshot and no locks; any statement outside a block
      commits it first, so nothing runs in it by accident.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chain = False
        # Called when a message that ran users' steps (a step gone on with, a chain) has come
        # back: from then on the session runs the worker's own statements, which a
        # cancellation meant for the steps must not interrupt.
        self.steps_done: Callable[[], None] | None = None
        self._held: list[list[Any]] = []
        # Set inside a block to the step to go on with (see NextStep): the message that commits
        # the block also runs it, in the transaction the commit opens; its result (or the
        # error it raised) waits in `prefetched` for Store.run_step.
        self.run_next: NextStep | None = None
        self.prefetched: tuple[int, Any] | None = None
        # Tasks deleted by writes of the current transaction (cleared when a part of it fails):
        # a step goes on with the next one only when the commit deletes its own task, which
        # tells a failed commit from a failure of the next step (_commit).
        self.deleted: set[int] = set()
        self._task_ids: list[int] = []  # reserved ids of df.tasks (reserve_task_id)
        self._blocks = 0
        self._open = False  # an empty transaction opened by the last commit (see chain)
        self._begin = False  # the block's BEGIN, not sent yet: it goes with the first statement
        self._idle = False  # the outermost block wrote nothing (end_idle)
        self._binder: ClientCursor[TupleRow] | None = None
        self._escape = Escaping(self.pgconn)
        self._statements: set[str] = set()  # named queries prepared as dfc_<name>
        self._wanted: set[str] = set()
        self._unpreparable: set[str] = set()
        self._suspect = False  # a transaction failed: check our prepared statements
        # psycopg deallocates every prepared statement of the session, ours too, whenever it
        # forgets its own (on rollback, and after a statement tagged DROP …, ALTER …, DISCARD
        # ALL or DEALLOCATE ALL, such as a step run outside a transaction) if it had any:
        # ours are in doubt from then on
        forget = self._prepared.clear

        def forget_all() -> bool:
            self._distrust_statements()
            return forget()

        self._prepared.clear = forget_all  # type: ignore[method-assign]
        # Rows of tasks locked ahead (FOR UPDATE) in this transaction, by task id: valid until a
        # statement or write may have changed them, or the block that locked them ends.
        self.locked: dict[int, Any] = {}

    @property
    def holding(self) -> bool:
        """Whether writes may be held now (only inside a transaction block)."""
        return self._blocks > 0

    @property
    def prepared_count(self) -> int | None:
        """How many prepared statements the session holds, for df._run_step_task's guard, when
        the worker knows: only when psycopg prepares none of its own (``prepare_threshold``
        None), and not while a failed transaction left them in doubt (until _prepare has
        checked them). None: df._run_step_task counts them. (Worker sessions keep psycopg's
        automatic preparation: without it, steps at 1 instance cost the server more CPU.)"""
        if self._suspect or self.prepare_threshold is not None:
            return None
        return len(self._statements)

    def bind(self, name: str, params: dict[str, Any] | None) -> bytes:
        """The named query with ``params`` merged in as literals (quoted by libpq for this
        session's encoding and string settings): ``EXECUTE dfc_<name>(…)`` once the session has
        prepared it, else the query text itself."""
        template = _template(name)
        values = params or {}
        literal = self._literal
        found = [literal(values[key]) for key in template.order]
        if None in found:  # a type without a fast path: psycopg's own client-side binding
            if self._binder is None:
                self._binder = ClientCursor(self)
            return self._binder.mogrify(query(name), params).encode(self.pgconn._encoding)
        arguments = cast(list[bytes], found)
        if name in self._statements:
            return template.execute + b", ".join(arguments) + b")" if arguments \
                else template.execute[:-1]
        self._wanted.add(name)
        literals = dict(zip(template.order, arguments, strict=True))
        out = [template.parts[0]]
        for index in range(1, len(template.parts), 2):
            out.append(literals[template.names[index // 2]])
            out.append(template.parts[index + 1])
        return b"".join(out)

    def _forget_locks(self) -> None:
        self.locked.clear()

    def _distrust_statements(self) -> None:
        """A transaction or savepoint failed: psycopg deallocates every prepared statement on
        rollback, and a refused step may have replaced one. Ours go unused until _prepare has
        checked them."""
        self._statements.clear()
        self._suspect = True

    def _prepare(self) -> None:
        """Prepare the statements held writes use (outside any transaction). After a failed
        transaction every statement of the session goes first: a step that prepared or replaced
        one (df._run_step_task refuses that, failing the step; PREPARE is not undone by the
        rollback) must not leave it behind, and the count the worker keeps (prepared_count)
        starts again from none."""
        if self._suspect:
            with super().cursor() as cur:
                self._drop_prepared(cur)
            self._suspect = False
        for name in sorted(self._wanted - self._statements - self._unpreparable):
            try:
                with super().cursor() as cur:
                    cur.execute(b"PREPARE dfc_" + name.encode() + b" AS " + _template(name).prepared)
                self._statements.add(name)
            except psycopg.errors.DatabaseError:
                self._unpreparable.add(name)  # e.g. a parameter whose type cannot be inferred
        self._wanted.clear()

    def _literal(self, value: Any) -> bytes | None:
        kind = type(value)  # the common types first, by their exact type
        if kind is str:
            return self._quote(value)
        if kind is int:
            return str(value).encode()
        if value is None:
            return b"NULL"
        if kind is Json or kind is Jsonb:
            return self._quote((value.dumps or dumps)(value.obj))
        if isinstance(value, bool):
            return b"true" if value else b"false"
        if isinstance(value, int):
            return str(value).encode()
        if isinstance(value, float) and math.isfinite(value):
            return repr(value).encode()
        if isinstance(value, str):
            return self._quote(value)
        if isinstance(value, Json | Jsonb):
            return self._quote((value.dumps or dumps)(value.obj))
        if isinstance(value, datetime):
            # ISO 8601 text holds no quote or backslash: quoting it is wrapping it
            return b"'" + value.isoformat().encode() + b"'"
        return None

    def _quote(self, text: str | bytes) -> bytes:
        """``text`` as a string literal, quoted by libpq for this session's encoding."""
        data = text if isinstance(text, bytes) else text.encode(self.pgconn._encoding)
        return self._escape.escape_literal(data)

    def rollback_to_savepoint(self, name: bytes) -> None:
        """After a statement sent under savepoint ``name`` failed: back to the savepoint. As when
        a nested block fails, writes held since and tasks locked ahead are forgotten, and the
        session's prepared statements are dropped (the failed step may have replaced one)."""
        self._held.clear()
        self._forget_locks()
        self.deleted.clear()
        with super().cursor() as cur:
            cur.execute(b"ROLLBACK TO SAVEPOINT " + name)
            self._drop_prepared(cur)

    def _drop_prepared(self, cur: psycopg.Cursor[Any]) -> None:
        """Deallocate every prepared statement of the session: a failed step may have
        prepared or replaced some (the worker prepares its own again when it needs them)."""
        self._statements.clear()
        self._prepared.clear()  # psycopg's own, likewise: it deallocates after the next execute
        cur.execute(b"DEALLOCATE ALL")
        self._suspect = False  # none left: nothing in doubt

    def hold(self, op: list[Any]) -> None:
        """Hold a write: one operation of df._apply (``["delete", task id]``, …). A task's new
        state goes into the held insert of its row instead, when that is the last held write to
        mention the task (a compound node writes the state it started with right after
        inserting its task): one row version instead of two."""
        if op[0] == "state":
            for held in reversed(self._held):
                if held[0] in ("insert", "move") and held[9] == op[1]:
                    held[8] = op[2]
                    return
                if op[1] in _tasks_written(held):
                    break
        self._held.append(op)

    @contextmanager
    def captured(self) -> Iterator[list[list[Any]]]:
        """Writes made inside are collected in the list given, not held for sending: the
        bookkeeping of a step still to run (a chain's, see runtime.chains), which travels with
        that step's own statement."""
        held, deleted = self._held, set(self.deleted)
        ops: list[list[Any]] = []
        self._held = ops
        try:
            yield ops
        finally:
            self._held, self.deleted = held, deleted

    def hold_insert(self, op: list[Any]) -> None:
        """Hold an ``insert`` op whose id is given: made a ``move`` into the row of a task that a
        held write deletes (the first such), in that write's place, when there is one. Every
        column is written, so the row is the new task's as if inserted; the deleted task's id
        is gone all the same (see ``deleted``)."""
        for index, held in enumerate(self._held):
            if held[0] == "delete":
                self._held[index] = ["move", *op[1:10], held[1]]
                return
        self._held.append(op)

    def take_held(self) -> list[bytes]:
        """The statements to send ahead of the caller's own (the held writes as one df._apply
        call)."""
        statements: list[bytes] = []
        if self._open and not self._blocks:
            statements.append(b"COMMIT")  # a statement outside any block: not in the empty one
            self._open = False
        if self._begin:
            statements.append(b"BEGIN")
            self._begin = False
        if self._held:
            ops, self._held = self._held, []
            statements.append(self.bind("apply", {"ops": Json(ops, dumps=fast_dumps)}))
        return statements

    def run_batch(self, cur: psycopg.Cursor[Any], statements: list[bytes]) -> None:
        """Send ``statements`` in one message and leave ``cur`` on the last result."""
        cur.execute(b"; ".join(statements))
        if len(statements) > 1:
            # what nextset() does, straight to the last result (one result per statement):
            # the ones in between are never read
            cur._select_current_result(len(statements) - 1)

    def send_batch(self, statements: list[bytes]) -> None:
        """Send ``statements`` in one message and return while the server runs them (their
        results must be read before anything else is sent)."""
        self.pgconn.send_query(b"; ".join(statements))
        try:
            self.wait(generators.send(self.pgconn))
        except BaseException:
            self._finish_sent()
            raise

    def reserve_task_id(self) -> int:
        """An id for a task to insert (from df.tasks' sequence, a few at a time)."""
        self.reserve_task_ids(1)
        return self._task_ids.pop()

    def reserve_task_ids(self, count: int) -> None:
        """Have ``count`` task ids at hand, so that the next ``count`` inserts send nothing."""
        if len(self._task_ids) < count:
            # the held writes stay held (a sequence is outside transactions, and an insert may
            # yet take over the row of a held delete); a BEGIN not sent yet is not needed
            with super().cursor() as cur:
                cur.execute(query("reserve_task_ids"), {"count": max(32, count)})
                self._task_ids[:0] = [int(row[0]) for row in cur.fetchall()][::-1]

    def discard_prefetched(self) -> None:
        """Drop a step the last commit ran ahead: a step that ran is rolled back (one that did
        not get its task left nothing in the open transaction)."""
        prefetched, self.prefetched = self.prefetched, None
        if prefetched is not None and not isinstance(prefetched[1], BaseException) \
                and prefetched[1][0] and self._open and not self._blocks:
            self._open = False
            self._distrust_statements()  # psycopg deallocates them all on rollback
            self.rollback()

    def take_prefetched(self, task_id: int) -> Any:
        """The result row of the step of task ``task_id`` that the last commit ran (raised:
        the error it failed with); None when it did not run it."""
        prefetched, self.prefetched = self.prefetched, None
        if prefetched is None or prefetched[0] != task_id:
            return None
        if isinstance(prefetched[1], BaseException):
            raise prefetched[1]
        return prefetched[1]

    def _commit(self) -> None:
        """Commit the outermost block with the held writes; with :attr:`chain`, open the next
        transaction, and with :attr:`run_next`, run the step to go on with in it."""
        following, self.run_next = (self.run_next if self.chain else None), None
        self.prefetched = None
        if self._begin and not self._held and following is None:
            self._begin = False  # nothing ran: there is no transaction to commit
            return
        statements = self.take_held()
        if following is not None and following.in_transaction:
            statements.append(b"SAVEPOINT " + FIRST_STEP_SAVEPOINT)
        else:
            statements.append(b"COMMIT")
            if self.chain:
                statements.append(b"BEGIN")
        if following is not None:
            statements += following.chained
            if following.rest is None:
                statements.append(following.statement)
        with super().cursor() as cur:
            try:
                try:
                    if following is not None and following.rest is not None:
                        # the rest of the chain is planned while the server runs its start
                        following = self._first_then_rest(statements, following.rest)
                        statements = [*following.chained, following.statement]
                    self.run_batch(cur, statements)
                finally:
                    if following is not None and self.steps_done is not None:
                        self.steps_done()
            except _FirstMessageFailed as failed:
                assert following is not None
                self._chain_stopped(cur, following, failed.error)
                return
            except psycopg.Error as exc:
                if following is None or self.broken:
                    raise
                if following.chain:
                    self._chain_stopped(cur, following, exc)
                    return
                # The message stopped at its first error. Whether that was the commit or the
                # next step, the committed step's task tells: the step deleted it. (Gone for
                # another reason, after a failed commit, it leaves nothing of this worker's.)
                self.rollback()
                cur.execute(query("task_exists"), {"id": following.after})
                row = cur.fetchone()
                if row is None or row[0]:
                    raise
                # committed; the next step failed (its effects rolled back): it fails as if
                # it had run on its own, and may have touched the prepared statements
                self._drop_prepared(cur)
                self.prefetched = (following.task_id, exc)
                self._open = False
                return
            if following is not None:
                self.prefetched = (following.task_id, cur.fetchone())
        self._open = self.chain

    def _first_then_rest(self, first: list[bytes], rest: Callable[[], NextStep]) -> NextStep:
        """Send ``first``, call ``rest`` while the server runs it, then wait for its end: the
        step to go on with that ``rest`` planned. :class:`_FirstMessageFailed` when the first
        message stopped at an error (``rest``'s plan is then dropped)."""
        self.send_batch(first)
        try:
            following = rest()
        finally:
            results = self._finish_sent()
        for result in results:
            if result.status == ExecStatus.FATAL_ERROR:
                raise _FirstMessageFailed(
                    psycopg.errors.error_from_result(result, encoding=self.pgconn._encoding))
        return following

    def _finish_sent(self) -> list[Any]:
        """The results of the message sent last, once it has run."""
        return self.wait(generators.fetch_many(self.pgconn))

    def _chain_stopped(self, cur: psycopg.Cursor[Any], following: NextStep,
                       exc: psycopg.Error) -> None:
        """The message that committed a step and ran a chain after it stopped at an error.

        Each step of the chain moved the task on to the next one when it committed, so the one
        task of the chain that exists tells where the message stopped: at the commit of the
        step before the chain (its own task is still there: the error is raised), or at a step
        of the chain or the last step. A step that failed is answered from ``prefetched`` with
        its error, as the next step of a plain commit is. A step that was not taken (SQLSTATE
        DFC01: its task is held elsewhere or gone, or the instance no longer runs), or a chain
        whose tasks are all gone, leaves nothing to go on with.

        A chain that began in the transaction being committed may have stopped at its first
        step: that transaction is still open, and goes back to the savepoint before the step
        and commits without it, the step failing as any step of a chain."""
        if following.in_transaction and self._back_to(cur, FIRST_STEP_SAVEPOINT):
            self._drop_prepared(cur)  # as below, for the same reasons
            cur.execute(query("reset_session"))
            if following.held_until is not None:
                cur.execute(query("postpone_task"),
                            {"id": following.chain[0], "run_at": following.held_until})
            self.run_batch(cur, [b"COMMIT", b"BEGIN"])
            self._open = True
            if exc.sqlstate != CHAIN_STEP_NOT_TAKEN:
                self.prefetched = (following.chain[0], exc)
            return
        self.rollback()
        tasks = (following.after, *following.chain, following.task_id)
        cur.execute(query("existing_tasks"), {"ids": list(tasks)})
        existing = {row[0] for row in cur.fetchall()}
        if following.after in existing:
            raise exc  # the commit failed
        self._open = False
        if exc.sqlstate == CHAIN_STEP_NOT_TAKEN:
            return  # no step failed (one that ran passed the checks of prepared statements)
        self._drop_prepared(cur)  # a step that failed may have touched them
        # and may have left what its rollback does not undo (a chained step fails without
        # cleaning up after itself): session-level advisory locks and dblink connections. A
        # step answered from `prefetched` fails as any step and is cleaned up again after.
        cur.execute(query("reset_session"))
        here = next((task for task in tasks[1:] if task in existing), None)
        if here is not None:
            self.prefetched = (here, exc)

    def _back_to(self, cur: psycopg.Cursor[Any], savepoint: bytes) -> bool:
        """Roll the failed transaction back to ``savepoint``; False when there is no such
        savepoint (the failure came before it, or after a commit released it)."""
        if self.pgconn.transaction_status != TransactionStatus.INERROR:
            return False
        try:
            cur.execute(b"ROLLBACK TO SAVEPOINT " + savepoint)
        except psycopg.Error:
            return False
        return True

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        # a statement of the session's own comes after the writes held before it
        self.send_held()
        return super().cursor(*args, **kwargs)

    def send_held(self) -> None:
        held = self.take_held()
        if held:
            with super().cursor() as cur:
                self.run_batch(cur, held)

    def end_idle(self) -> None:
        """Inside the outermost block, which wrote nothing and holds no locks (a claim that
        found no task): leave its transaction to be committed in front of the session's next
        statement (as the empty one a commit opens) instead of committing it now."""
        if self._blocks == 1 and not self._held and self.run_next is None:
            self._idle = True

    @contextmanager
    def transaction(self, savepoint_name: str | None = None,
                    force_rollback: bool = False) -> Iterator[Transaction]:
        if self._blocks and self._begin:
            self.send_held()  # a nested block starts inside a transaction the server knows of
        if self._open and not self._blocks and not savepoint_name and not force_rollback:
            self._open = False  # adopt the transaction the last commit opened
        elif (self.pgconn.transaction_status != TransactionStatus.IDLE or savepoint_name
                or force_rollback or not self.autocommit or self._open):
            self.send_held()
            self._blocks += 1
            try:
                with super().transaction(savepoint_name, force_rollback) as tx:
                    yield tx
                    self.send_held()
            except BaseException:
                self._held.clear()
                self._forget_locks()
                self._distrust_statements()
                self.deleted.clear()
                raise
            finally:
                self._blocks -= 1
            return
        else:
            if self._wanted or self._suspect:
                self._prepare()
            self._begin = True
        # The outermost block, managed here rather than by psycopg's Transaction (which would
        # send BEGIN and COMMIT on their own).
        self._blocks += 1
        outer = Transaction(self)
        self._forget_locks()
        self.run_next = None
        self.deleted.clear()
        self._idle = False
        try:
            yield outer
            self._forget_locks()
            if self._idle and not self._held and self.run_next is None:
                # committed in front of the next statement; nothing sent yet: nothing to end
                self._open = not self._begin
                self._begin = False
            else:
                self._commit()
        except BaseException:
            self._held.clear()
            self._begin = False
            self._open = False
            self.run_next = None
            self.prefetched = None
            self._forget_locks()
            self._distrust_statements()
            if not self.closed and self.pgconn.transaction_status != TransactionStatus.IDLE:
                self.rollback()
            failure = sys.exc_info()[1]
            if isinstance(failure, psycopg.Rollback) and failure.transaction in (None, outer):
                return  # as psycopg's Transaction: an explicit rollback is not an error
            raise
        finally:
            self._blocks -= 1


def _tasks_written(op: list[Any]) -> tuple[Any, ...]:
    """The ids of the task rows a df._apply operation writes (see sql/schema.sql, df._apply;
    ``finish`` deletes an instance's rows whatever their ids, so a state written after it
    changes nothing either way)."""
    kind = op[0]
    if kind in ("delete", "state"):
        return (op[1],)
    if kind == "insert":
        return (op[9],)
    if kind == "move":
        return (op[9], op[10])
    return ()
