"""exec 'python3' 'one.py' ? (and parallel python3 one.py {}): one process per id."""

import sys

from work import work

print(work(sys.argv[1]), flush=True)
