"""pipe 'python3' 'worker.py': one process answers every id of its thread."""

import sys

from work import work

for line in sys.stdin:
    print(work(line.rstrip("\r\n")), flush=True)
