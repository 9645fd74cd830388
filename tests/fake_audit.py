"""A fake security audit for the tests of halting steps that run beside the rehearsal.

No tests here. The script starts a child in its process group and a daemon outside it (setsid
and a double fork), begins its report the way an atomic write does (a temporary file beside it),
records every pid, then works for two minutes: only being stopped ends it sooner, and it never
finishes its report in a test.
"""

from __future__ import annotations

TEMPLATE = """
import os, subprocess, sys, time
pids, report = {pids}, {report}
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
forked = os.fork()
if forked == 0:
    os.setsid()
    if os.fork() == 0:
        with open(pids, "a") as handle:
            handle.write(f"{{os.getpid()}}\\n")
        time.sleep(120)
    os._exit(0)
os.waitpid(forked, 0)
folder, name = os.path.split(report)
with open(os.path.join(folder, f".{{name}}.{tmp_tag}.tmp"), "w") as handle:
    handle.write('{{"partial": ')
with open(pids, "a") as handle:
    handle.write(f"{{os.getpid()}}\\n{{child.pid}}\\n")
print("{line}", flush=True)
time.sleep(120)
"""


def audit_script(*, pids: str, report: str, tmp_tag: str, line: str) -> str:
    """The script's source; ``pids`` and ``report`` are Python expressions giving the file that
    collects the pids and the report's path, ``tmp_tag`` names its temporary file, ``line`` is
    what it prints once everything has started."""
    return TEMPLATE.format(pids=pids, report=report, tmp_tag=tmp_tag, line=line)
