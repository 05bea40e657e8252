"""Load-test a deployed DayTrader with Locust: simulated traders over the JSON API.

Two scenarios, in equal numbers of simulated traders:

* ``ReadingTrader`` looks at quotes and at its own account summary, the
  shape of the course's classic read test (GET /api/v1/quotes/{symbol} and
  GET /api/v1/users/{user}).
* ``TradingTrader`` trades in rounds: BUY, COMMIT_BUY, SELL, COMMIT_SELL,
  each a POST /api/v1/commands.

Every simulated trader is a DayTrader user of its own and ADDs funds before
anything else, so that a run needs no data set up beforehand and never
touches the accounts of real traders.

Configuration (environment variables):

``DAYTRADER_ADMIN_TOKEN``
    The supervisor token: one token acts for every simulated user.
``DAYTRADER_USER_TOKENS``
    Instead, a file of ``user token`` lines (one per trader account): each
    simulated trader takes the next line and acts only as that user, with
    that user's own token. More traders than lines stop with an error.
``DAYTRADER_SYMBOLS``
    Comma-separated stock symbols to quote and trade (default: 20 symbols).
``DAYTRADER_WAIT``
    The most seconds a trader pauses between requests (default 0: as fast
    as the server answers, for a throughput test; 1 to 3 is closer to
    people).

Run against a cluster (``--host`` is the load balancer)::

    locust -f deploy/locust/locustfile.py --host http://127.0.0.1:9999
    locust -f deploy/locust/locustfile.py --host http://127.0.0.1:9999 \\
        --headless -u 50 -r 10 -t 2m --csv out/locust

docs/benchmarks.md says more, including JMeter.
"""

import itertools
import os
import random
import threading
import time
import uuid

from locust import FastHttpUser, between, constant, task

SYMBOLS = [
    s.strip().upper()
    for s in os.environ.get(
        "DAYTRADER_SYMBOLS",
        "ABC,DEF,GHI,JKL,MNO,PQR,STU,VWX,YZA,BCD,EFG,HIJ,KLM,NOP,QRS,TUV,WXY,ZAB,CDE,FGH",
    ).split(",")
    if s.strip()
]

_WAIT = float(os.environ.get("DAYTRADER_WAIT", "0"))

# Users of this run: a random prefix keeps two runs (or two Locust workers)
# against the same cluster from sharing accounts.
_RUN = uuid.uuid4().hex[:8]
_serial = itertools.count(1)
_lock = threading.Lock()


def _load_user_tokens():
    path = os.environ.get("DAYTRADER_USER_TOKENS")
    if not path:
        return None
    pairs = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            fields = line.split()
            if len(fields) == 2:
                pairs.append((fields[0], fields[1]))
    if not pairs:
        raise SystemExit(f"DAYTRADER_USER_TOKENS: no 'user token' lines in {path}")
    return pairs


_USER_TOKENS = _load_user_tokens()
_ADMIN_TOKEN = os.environ.get("DAYTRADER_ADMIN_TOKEN")
if _USER_TOKENS is None and not _ADMIN_TOKEN:
    raise SystemExit("set DAYTRADER_ADMIN_TOKEN (the supervisor token) or DAYTRADER_USER_TOKENS")


def _next_identity():
    """A user id and the token to act as it."""
    with _lock:
        n = next(_serial)
    if _USER_TOKENS is not None:
        if n > len(_USER_TOKENS):
            raise SystemExit(
                f"more simulated traders than lines in DAYTRADER_USER_TOKENS ({len(_USER_TOKENS)})"
            )
        return _USER_TOKENS[n - 1]
    return f"locust-{_RUN}-{n}", _ADMIN_TOKEN


class Trader(FastHttpUser):
    """A DayTrader user with funds: the part both scenarios share."""

    abstract = True
    wait_time = between(0, _WAIT) if _WAIT > 0 else constant(0)

    def on_start(self):
        self.user_id, token = _next_identity()
        self.auth = {"Authorization": f"Bearer {token}"}
        # transaction_num is the idempotency key of a user's commands: it
        # must grow across runs too, when DAYTRADER_USER_TOKENS reuses an
        # account, or a command would be answered from an earlier run.
        self.transaction_nums = itertools.count(time.time_ns() // 1000)
        self.command("ADD", amount="1000000.00")

    def command(self, name, **fields):
        body = {"command": name, "user": self.user_id, "transaction_num": next(self.transaction_nums)}
        body.update(fields)
        return self.client.post(
            "/api/v1/commands", json=body, headers=self.auth, name=f"POST /api/v1/commands {name}"
        )


class ReadingTrader(Trader):
    """Reads quotes and its own summary."""

    @task
    def quote(self):
        symbol = random.choice(SYMBOLS)
        self.client.get(
            f"/api/v1/quotes/{symbol}", headers=self.auth, name="GET /api/v1/quotes/{symbol}"
        )

    @task
    def summary(self):
        self.client.get(
            f"/api/v1/users/{self.user_id}", headers=self.auth, name="GET /api/v1/users/{user}"
        )


class TradingTrader(Trader):
    """Buys, commits, sells and commits, round after round.

    A buy of 500.00 gets at least five shares of any symbol (prices are at
    most 99.99), so selling 100.00 of it always has shares to sell.
    """

    @task
    def round_trip(self):
        symbol = random.choice(SYMBOLS)
        self.command("BUY", symbol=symbol, amount="500.00")
        self.command("COMMIT_BUY")
        self.command("SELL", symbol=symbol, amount="100.00")
        self.command("COMMIT_SELL")
