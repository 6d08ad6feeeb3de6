"""`kechuang vouchers_bench --yes-write-benchmark-data`: voucher applications per
second with concurrent clients calling the service layer, then the invariants.

It writes a benchmark program, institution, enterprises and orders into the
configured database: point DATABASE_URL at a scratch database. Every client
applies vouchers to its share of orders spread over many enterprises (a few
clients share each enterprise, so its quota lock is contended), all released
together. Each client is a thread with its own database connection and its own
transactions; ``--processes`` spreads the clients over that many processes
(default 2, one per core of the benchmark machine: 32 processes on 2 cores
spend their time switching and re-warming caches, not applying vouchers).

``--http`` drives the HTTP API instead: it serves the app with gunicorn (waitress
when gunicorn is not installed), DEBUG off, and the clients POST
``/api/vouchers/orders/{pk}/vouchers`` with each enterprise's API token and an
idempotency key over loopback.

Besides applications per second it prints the CPU spent per application: by the
client processes, by the app server (``--http``), and by the PostgreSQL backends
that served the run (read from /proc, so only for a database on this machine).
On a shared machine the throughput moves with everyone else's load; the CPU per
application much less so."""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.utils import timezone

from kechuang.accounts import tokens
from kechuang.accounts.models import Role, User
from kechuang.errors import KechuangError
from kechuang.registry.models import Enterprise
from kechuang.vouchers import access, selectors, services
from kechuang.vouchers.models import (
    LedgerTransaction,
    Program,
    ServiceCategory,
    ServiceOrder,
)


@dataclass
class Bench:
    program: Program
    order_ids: list[int]
    #: API token of each order's enterprise user, by order id (``--http`` only).
    tokens: dict[int, str]
    #: The id of each order's enterprise user, by order id.
    users: dict[int, int]


def prepare(*, orders: int, enterprises: int, with_tokens: bool = False) -> Bench:
    """A fresh program with ``enterprises`` enterprises, each with an approved
    quota of about all of its orders, and ``orders`` draft orders of ¥100."""
    run = uuid.uuid4().hex[:8]
    today = timezone.localdate()
    staff = User.objects.create_user(f"bench_staff_{run}", role=Role.STAFF)
    inst_user = User.objects.create_user(f"bench_inst_{run}", role=Role.INSTITUTION)
    category, _ = ServiceCategory.objects.get_or_create(code="bench", defaults={"name": "bench"})
    per_order = Decimal("100.00")
    quota_each = per_order * orders // enterprises  # enough for about all of its orders
    program = services.program_create(
        year=today.year,
        name=f"bench {run}",
        budget=quota_each * enterprises * 2,
        per_enterprise_cap=quota_each,
        per_team_cap=quota_each,
        valid_from=today.replace(month=1, day=1),
        valid_until=today.replace(month=12, day=31),
        categories=[category],
        actor=staff,
        idempotency_key=f"bench-program-{run}",
    )
    inst = services.institution_apply(
        actor=inst_user, name=f"bench lab {run}", credit_code=f"BENCH{run}".ljust(18, "0")
    )
    inst = services.institution_decide(institution=inst, actor=staff, approve=True)
    offering = services.offering_create(
        institution=inst, actor=inst_user, category=category, name="bench", price=per_order
    )
    users = []
    for i in range(enterprises):
        ent = Enterprise.objects.create(credit_code=f"B{run}{i:09d}"[:18], name=f"bench {run} {i}")
        user = User.objects.create_user(f"bench_{run}_{i}", role=Role.ENTERPRISE, enterprise=ent)
        app = services.quota_apply(
            program=program,
            enterprise=ent,
            actor=user,
            amount=quota_each,
            applicant_facts={"registered_in_shanghai": True, "is_tsme": True},
        )
        services.quota_approve(
            application=app, actor=staff, amount=quota_each, idempotency_key=f"bench-q-{run}-{i}"
        )
        users.append(user)
    ServiceOrder.objects.bulk_create(
        ServiceOrder(
            program=program,
            enterprise=users[i % enterprises].enterprise,
            institution=inst,
            offering=offering,
            contract_amount=per_order,
            order_date=today,
            start_date=today,
            end_date=today,
            created_by=users[i % enterprises],
        )
        for i in range(orders)
    )
    ids = list(
        ServiceOrder.objects.filter(program=program).order_by("pk").values_list("pk", flat=True)
    )
    enterprise_of = dict(
        ServiceOrder.objects.filter(program=program).values_list("pk", "enterprise_id")
    )
    user_of = {u.enterprise_id: u.pk for u in users}
    token_of: dict[int, str] = {}
    if with_tokens:
        by_enterprise = {
            u.enterprise_id: tokens.token_create(user=u, name=f"bench {run}")[1] for u in users
        }
        token_of = {pk: by_enterprise[ent_id] for pk, ent_id in enterprise_of.items()}
    return Bench(
        program=program,
        order_ids=ids,
        tokens=token_of,
        users={pk: user_of[ent_id] for pk, ent_id in enterprise_of.items()},
    )


def violations(program: Program) -> list[str]:
    """The ledger invariants after the run, as a list of what is broken."""
    found = []
    if not selectors.budget_identity_holds(program):
        found.append("budget identity")
    if selectors.negative_accounts(program):
        found.append("negative balance")
    if selectors.unbalanced_transactions(program):
        found.append("unbalanced transaction")
    applied = ServiceOrder.objects.filter(program=program).exclude(status="draft")
    commitments = LedgerTransaction.objects.filter(
        program=program, idempotency_key__startswith="bench-o-"
    )
    if applied.count() != commitments.count():
        found.append("orders applied ≠ commitments posted")
    committed = selectors.program_balances(program)["committed"]
    subsidies = sum((o.subsidy_amount for o in applied.only("subsidy_amount")), Decimal(0))
    if committed != subsidies:
        found.append("committed ≠ sum of order subsidies")
    return found


# ---------------------------------------------------------------- clients


def _service_client(orders: list[tuple[int, int]], start: threading.Barrier, out: list) -> None:
    """One client: for each (order, its enterprise user), the lookup the API and
    the pages make (``access.order_for_enterprise``), then one service call (one
    transaction)."""
    done = refused = 0
    actors: dict[int, User] = {}  # a client signs in once per enterprise user, not per order
    start.wait()
    for pk, user_id in orders:
        actor = actors.get(user_id)
        if actor is None:
            actor = actors[user_id] = User.objects.select_related("enterprise").get(pk=user_id)
        order = access.order_for_enterprise(actor, pk)
        try:
            services.order_voucher_apply(order=order, actor=actor, idempotency_key=f"bench-o-{pk}")
            done += 1
        except KechuangError:
            refused += 1
    out.append((done, refused))


def _http_client(
    port: int, orders: list[tuple[int, str]], start: threading.Barrier, out: list
) -> None:
    """One client: one POST per order, each on a new connection. (On kept-alive
    connections, opened all at once, one gunicorn worker accepts most of them and
    serves them on one core while the others idle.)"""
    done = refused = 0
    start.wait()
    for pk, token in orders:
        body = json.dumps({"idempotency_key": f"bench-o-{pk}"})
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Connection": "close",
        }
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", f"/api/vouchers/orders/{pk}/vouchers", body, headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status == 200:
            done += 1
        elif response.status == 400:
            refused += 1
        else:
            raise RuntimeError(f"order {pk}: HTTP {response.status}")
    out.append((done, refused))


def _process(target, shares: list, ready, go, results) -> None:
    """Run one thread per share in this process; report (done, refused) of each,
    the process's CPU and that of the clients' database backends."""
    connections.close_all()  # never share the parent's connection after fork
    out: list = []
    backends: list[float] = []
    start = threading.Barrier(len(shares) + 1)

    def client(share) -> None:
        try:
            target(*share, start, out)
        finally:
            # The backend started with the client's first query, after the start.
            cpu = (
                backend_cpu([own_backend()])
                if connection.connection is not None and connection.vendor == "postgresql"
                else None
            )
            if cpu is not None:
                backends.append(cpu[1])
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    ready.wait()
    go.wait()
    cpu = time.process_time()
    start.wait()
    for t in threads:
        t.join()
    results.put((out, time.process_time() - cpu, sum(backends) if backends else None))


@dataclass
class Run:
    seconds: float
    done: int
    refused: int
    #: CPU seconds of the client processes, of the app server's processes
    #: (``--http``), of the database backends serving the run (the clients' or
    #: the app server's) and of every PostgreSQL process (other users' work
    #: included: the machine is shared); None where not measurable.
    client_cpu: float
    server_cpu: float | None = None
    backends_cpu: float | None = None
    database_cpu: float | None = None


def run_clients(target, shares: list, processes: int, server_pid: int | None = None) -> Run:
    """Run ``target(*share)`` in one thread per share, spread over ``processes``
    processes, all released at once, and measure the time and the CPU it took."""
    connections.close_all()
    ctx = mp.get_context("fork")
    groups = [shares[p::processes] for p in range(processes)]
    groups = [g for g in groups if g]
    ready, go, results = ctx.Barrier(len(groups) + 1), ctx.Barrier(len(groups) + 1), ctx.Queue()
    procs = [ctx.Process(target=_process, args=(target, g, ready, go, results)) for g in groups]
    for p in procs:
        p.start()
    postmaster = _postmaster_pid()
    ready.wait()  # every process forked and its threads started
    db_before = tree_cpu(postmaster)
    server_before = tree_cpu(server_pid)
    # The app server's backends outlive the run (persistent connections).
    server_backends = server_backends_cpu() if server_pid is not None else None
    start = time.perf_counter()
    go.wait()
    # A process that died without reporting would otherwise leave us waiting forever.
    reports = [results.get(timeout=3600) for _ in procs]
    elapsed = time.perf_counter() - start
    server_after = tree_cpu(server_pid)
    if server_pid is not None:
        backends = _delta_by_pid(server_backends, server_backends_cpu())
    else:
        client_backends = [b for _, _, b in reports if b is not None]
        backends = sum(client_backends) if client_backends else None
    for p in procs:
        p.join()
    # The clients' backends exit as their connections close; the postmaster
    # adds their CPU to its children's once it has reaped them.
    time.sleep(0.5)
    db_after = tree_cpu(postmaster)
    outcomes = [o for out, _, _ in reports for o in out]
    if len(outcomes) != len(shares):
        raise CommandError(f"{len(shares) - len(outcomes)} clients failed (see above)")
    return Run(
        seconds=elapsed,
        done=sum(d for d, _ in outcomes),
        refused=sum(r for _, r in outcomes),
        client_cpu=sum(cpu for _, cpu, _ in reports),
        server_cpu=_delta(server_before, server_after),
        backends_cpu=backends,
        database_cpu=_delta(db_before, db_after),
    )


# ---------------------------------------------------------------- CPU accounting
#
# The machine is shared and wall-clock throughput is noisy there, so the command
# also reports CPU per application. Client processes measure their own; the app
# server and PostgreSQL (when it runs on this machine) are read from /proc.


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces and parentheses: split after it.
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_cpu(root: int | None) -> float | None:
    """CPU seconds of ``root`` and all its descendants, living or reaped by it
    (None: no such process readable here)."""
    if root is None:
        return None
    fields = _stat(root)
    if fields is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # Fields 14-17 of proc(5): utime, stime, and the reaped children's cutime, cstime.
    total = sum(int(v) for v in fields[11:15])
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                children.setdefault(int(st[1]), []).append(int(name))
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        st = _stat(pid)
        if st is not None:
            total += sum(int(v) for v in st[11:15])
        todo += children.get(pid, [])
    return total / tick


def own_backend() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def backend_cpu(pids: list[int]) -> tuple[dict[int, float], float] | None:
    """CPU seconds of each of these processes and their sum (None: none readable)."""
    tick = os.sysconf("SC_CLK_TCK")
    each = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            each[pid] = (int(fields[11]) + int(fields[12])) / tick
    return (each, sum(each.values())) if each else None


def server_backends_cpu() -> dict[int, float] | None:
    """CPU of every backend connected to this database but ours, by pid."""
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            pids = [pid for (pid,) in cur.fetchall()]
    finally:
        connection.close()
    found = backend_cpu(pids)
    return found[0] if found is not None else {}


def _delta_by_pid(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    if before is None or after is None:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _postmaster_pid() -> int | None:
    """The PostgreSQL server's main process, if it runs on this machine."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    try:
        # The backend's parent is the postmaster: it outlives every backend.
        fields = _stat(backend)
    finally:
        connection.close()  # the clients are forked: share no connection with them
    return int(fields[1]) if fields is not None else None


# ---------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    """Serve the app on 127.0.0.1:``port`` with DEBUG off, in its own process group."""
    env = dict(os.environ, KECHUANG_DEBUG="False")
    env.setdefault("KECHUANG_SECRET_KEY", secrets.token_urlsafe(50))
    # Each server thread keeps its connection between requests, as a deployment would.
    env.setdefault("KECHUANG_DB_CONN_MAX_AGE", "60")
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    if gunicorn:
        cmd = [
            gunicorn,
            "kechuang.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            f"--threads={threads}",
            # One thread: gunicorn's plain pre-fork workers, one request at a time each.
            f"--worker-class={'sync' if threads == 1 else 'gthread'}",
            "--backlog=256",
            "--log-level=warning",
        ]
        name = f"gunicorn, {workers} worker processes × {threads} threads"
    else:
        cmd = [sys.executable, "-m", "kechuang", "serve", f"--port={port}", f"--threads={threads}"]
        name = f"waitress, {threads} threads"
    server = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError(f"the server exited ({server.returncode})")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/api/openapi.json")
            if conn.getresponse().status == 200:
                return server, name
        except OSError:
            pass  # not listening yet
        finally:
            conn.close()
        time.sleep(0.2)
    stop_server(server)
    raise CommandError("the server did not answer within 30 s")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def cpu_line(run: Run) -> str:
    """CPU per application applied, by whom (ms)."""
    n = max(run.done, 1)
    parts = [("clients", run.client_cpu), ("app server", run.server_cpu)]
    parts.append(("the run's PostgreSQL backends", run.backends_cpu))
    shown = [
        f"{name} {'n/a' if cpu is None else f'{1000 * cpu / n:.2f} ms'}"
        for name, cpu in parts
        if cpu is not None or name != "app server"
    ]
    known = [cpu for _, cpu in parts if cpu is not None]
    everything = (
        ""
        if run.database_cpu is None
        else f" (all PostgreSQL processes, anyone's: {1000 * run.database_cpu / n:.2f} ms)"
    )
    return f"{', '.join(shown)}; total {1000 * sum(known) / n:.2f} ms{everything}"


class Command(BaseCommand):
    help = "Benchmark voucher applications with concurrent clients (writes data: scratch DB only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--clients", type=int, default=32)
        parser.add_argument("--processes", type=int, default=2, help="processes the clients share")
        parser.add_argument("--orders", type=int, default=3200)
        parser.add_argument("--enterprises", type=int, default=64)
        parser.add_argument("--http", action="store_true", help="through the HTTP API")
        parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
        parser.add_argument("--threads", type=int, default=8, help="threads per server worker")
        parser.add_argument("--yes-write-benchmark-data", action="store_true")

    def handle(self, *args, clients: int, processes: int, orders: int, **opts) -> None:
        if not opts["yes_write_benchmark_data"]:
            raise CommandError(
                "writes benchmark data; pass --yes-write-benchmark-data on a scratch database"
            )
        if clients < 1 or not 1 <= processes <= clients:
            raise CommandError("need --clients ≥ 1 and 1 ≤ --processes ≤ --clients")
        bench = prepare(orders=orders, enterprises=opts["enterprises"], with_tokens=opts["http"])
        ids = bench.order_ids
        server = None
        how = f"service layer, {processes} processes"
        if opts["http"]:
            port = _free_port()
            server, name = start_server(port, opts["workers"], opts["threads"])
            how = f"HTTP API on loopback ({name}), clients in {processes} processes"
            shares = [
                (port, [(pk, bench.tokens[pk]) for pk in ids[c::clients]]) for c in range(clients)
            ]
            target = _http_client
        else:
            shares = [([(pk, bench.users[pk]) for pk in ids[c::clients]],) for c in range(clients)]
            target = _service_client
        load = os.getloadavg()[0]
        try:
            run = run_clients(
                target, shares, processes, server_pid=server.pid if server is not None else None
            )
        finally:
            if server is not None:
                stop_server(server)
        b = selectors.program_balances(bench.program)
        broken = violations(bench.program)
        done, elapsed = run.done, run.seconds
        self.stdout.write(
            f"{clients} clients ({how}), {orders} orders over {opts['enterprises']} "
            f"enterprises: {done} applied, {run.refused} refused in {elapsed:.2f}s = "
            f"{done / elapsed:.0f} applications/s; committed {b['committed']}, "
            f"quota left {b['quota']}; invariant violations: {', '.join(broken) or 'none'}"
        )
        self.stdout.write(f"CPU per application: {cpu_line(run)}; load average before {load:.2f}")
        if broken:
            raise CommandError("invariants violated")
