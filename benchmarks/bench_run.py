"""Benchmark: MailUser chunk scripts over PowerShell Remoting, one runspace against two.

The loopback WSMan server of the tests (tests/psrp_server.py) plays the jump host and spends
20 ms per user of each script it receives, as Exchange Online would per New-MailUser. 1,000
MailUsers in 4 chunk files run with --parallel 1 and --parallel 2 through real pypsrp.

    python3 benchmarks/bench_run.py

Targets (issue "Run the reviewed runbook over PowerShell Remoting, safely and resumably"):
--parallel 2 at least 1.8x faster than --parallel 1; pipelines grow with chunks, not users.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_render import generate  # noqa: E402

from runbook import build  # noqa: E402
from runbook.run.manifest import Runbook  # noqa: E402
from runbook.run.runner import Runner  # noqa: E402
from runbook.run.transport import PsrpSettings, PsrpTransport  # noqa: E402
from tests.psrp_server import LoopbackWSMan, Received, Reply  # noqa: E402
from tests.test_run_local import RUNNER as TEST_RUNNER  # noqa: E402

USERS, CHUNK, PER_USER = 1000, 250, 0.020
RUNNER = TEST_RUNNER.replace('transport = "local"', 'transport = "psrp"\nhost = "127.0.0.1"\nhttps = false\n'
                                                   'auth = "basic"\nallow_unencrypted_http = true')


def behave(received: Received) -> Reply:
    users = len(re.findall(r"\[ordered\]@\{'Line' = ", received.statements[-1][0]))
    return Reply(output=[f"{users} users"], delay=users * PER_USER)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="runbook-bench-run-") as tmp:
        work = Path(tmp)
        generate(work / "export.csv", USERS)
        text = (REPO / "samples" / "migration.toml").read_text(encoding="utf-8")
        text = text[: text.index("[sync]")].replace('export = "csv/source-mailboxes.csv"', 'export = "export.csv"')
        text = text.replace("chunk_size = 500", f"chunk_size = {CHUNK}")
        (work / "migration.toml").write_text(text + RUNNER, encoding="utf-8")
        timings = {}
        with LoopbackWSMan(behave) as server:
            for parallel in (1, 2):
                out = work / f"runbook-{parallel}"
                build.render(work / "migration.toml", out)
                runbook = Runbook(out)
                units = runbook.select(["mailusers"], None)
                before = len(server.received)
                transport = PsrpTransport(PsrpSettings("127.0.0.1", server.port, False, True, "basic",
                                                       server.username, server.password, True, parallel),
                                          runbook.runner)
                start = time.perf_counter()
                Runner(runbook, transport, lambda unit: True, lambda unit, event: None, parallel=parallel).run(units)
                timings[parallel] = time.perf_counter() - start
                transport.close()
                pipelines = len(server.received) - before
                print(f"--parallel {parallel}: {timings[parallel]:.2f} s for {USERS} MailUsers in {len(units)} "
                      f"chunk files, {pipelines} pipelines", flush=True)
        speedup = timings[1] / timings[2]
        print(f"speed-up with --parallel 2: {speedup:.2f}x (target at least 1.8x): {'yes' if speedup >= 1.8 else 'NO'}")


if __name__ == "__main__":
    main()
