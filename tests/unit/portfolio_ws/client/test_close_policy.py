"""One close-policy table, followed the same way by both clients: the JS client's table and
``nextStep`` (clients/js/src/close-policy.js, run here in node) against ``constants`` and the Python
client's ``policy.next_step``, on every close code, cause and client state."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from typing import Any

from portfolio_ws import constants as c
from portfolio_ws.client import policy
from tests import ROOT

JS = ROOT / "clients" / "js" / "src"
CODES = [1000, 1001, 1006, 1008, 1009, 1011, 1012, 1013, 4000]
CAUSES: list[str | None] = [None, *(cause.value for cause in c.CloseCause), "SOMETHING_NEW"]
RANDOM = 0.37


def node(script: str, *args: Any) -> Any:
    """Run an ES module in node (required: CI installs it) and return what it printed as JSON."""
    exe = shutil.which("node")
    assert exe, "node is required (apt-get install nodejs)"
    done = subprocess.run([exe, "--input-type=module", "-e", script], cwd=JS, input=json.dumps(args),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_js_table_is_the_python_table() -> None:
    tables = node("""
      import { CLOSE_CAUSES, CLOSE_CODES } from "./close-policy.js";
      console.log(JSON.stringify({ causes: CLOSE_CAUSES, codes: CLOSE_CODES }));
    """)
    assert tables["causes"] == {cause.value: {"code": int(code), "action": rule.action, "delay": rule.delay}
                                for cause, (code, rule) in c.CLOSE_CAUSES.items()}
    assert tables["codes"] == {str(int(code)): {"action": rule.action, "delay": rule.delay}
                               for code, rule in c.CLOSE_CODES.items()}


def test_both_clients_take_the_same_step_after_every_close() -> None:
    states = list(itertools.product(CODES, CAUSES, [0, 1, 9, 10], [False, True], [0, 3, 40], [0, 2, 9]))
    js = node("""
      import { nextStep } from "./close-policy.js";
      import { DEFAULTS } from "./portfolio-stream.js";
      import { readFileSync } from "node:fs";
      const states = JSON.parse(readFileSync(0, "utf8"))[0];
      const random = () => %s;
      console.log(JSON.stringify({
        defaults: DEFAULTS,
        steps: states.map(([code, cause, failures, polling, attempt, retries]) =>
          nextStep(code, cause, { failures, polling, attempt, retries }, DEFAULTS, random)),
      }));
    """ % RANDOM, states)
    t = policy.Timings()
    d = js["defaults"]
    # The same defaults, in ms on the JS side.
    assert (d["baseDelayMs"], d["maxDelayMs"], d["slowDownDelayMs"], d["socketRetryMs"]) == \
        (t.backoff_base * 1000, t.backoff_cap * 1000, t.try_again_later * 1000, t.retry_while_polling * 1000)
    assert d["maxFailedAttempts"] == t.poll_after_failures
    for state, step in zip(states, js["steps"]):
        code, cause, failures, polling, attempt, retries = state
        py = policy.next_step(code, cause, failures=failures, polling=polling, attempt=attempt, timings=t,
                              random=lambda: RANDOM, retries=retries)
        assert (step["action"], round(step["delayMs"], 6)) == (py.action, round(py.delay * 1000, 6)), state


DELAY = {"none": "-", "backoff": "backoff", "backoff_slow": "backoff + 5 s",
         "poll_retry": "socket retried after 0.5-4 s while polling"}


def rendered_table() -> str:
    """The close-policy table as docs/clients.md shows it, from constants."""
    def yn(flag: bool) -> str:
        return "yes" if flag else "no"

    lines = ["| cause (`error` `data.code`) | close code | reconnect | delay | poll `GET /api/portfolio` |",
             "|---|---|---|---|---|"]
    for cause, (code, rule) in c.CLOSE_CAUSES.items():
        lines.append(f"| `{cause.value}` | {int(code)} | {yn(rule.reconnect)} | {DELAY[rule.delay]} | {yn(rule.poll)} |")
    lines += ["", "| close code, no cause | reconnect | delay | poll `GET /api/portfolio` |", "|---|---|---|---|"]
    for code, rule in c.CLOSE_CODES.items():
        lines.append(f"| {int(code)} | {yn(rule.reconnect)} | {DELAY[rule.delay]} | {yn(rule.poll)} |")
    lines.append("| any other (4000 a client's own timeout, 1012, ...) | yes | backoff | no |")
    return "\n".join(lines)


def test_the_client_guide_shows_the_table_and_protocol_md_links_to_it() -> None:
    assert rendered_table() in (ROOT / "docs" / "clients.md").read_text()
    assert "(clients.md#close-policy)" in (ROOT / "docs" / "protocol.md").read_text()
    assert policy.next_step(4000, None, failures=0, polling=False, attempt=0, timings=policy.Timings(),
                            random=lambda: 1.0) == policy.Step("reconnect", 1.0)  # "any other" row
