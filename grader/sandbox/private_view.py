"""The unshare fallback's filesystem view, made as root inside the job's new namespaces:

    python -m grader.sandbox.private_view ROOT MOUNTS_JSON -- COMMAND...

ROOT is an empty folder and MOUNTS_JSON the job's view (`view.plan`, as `view.to_data` writes
it): the same view bubblewrap and the warm path give, with its own /tmp, /dev (and /dev/shm) and
/proc, built on ROOT and made this process's root. COMMAND then runs as its child, and this process
becomes the namespace's bare init (pid1.py), as under bubblewrap and on the warm path. Nothing
here changes the host's own mounts.
"""

from __future__ import annotations

import json
import os
import sys

from grader.sandbox import pid1, view


def main(argv: list[str]) -> None:
    split = argv.index("--")
    (root, mounts), command = argv[:split], argv[split + 1 :]
    view.build(view.from_data(json.loads(mounts)), root)
    os.chdir("/tmp")
    job = os.fork()
    if job == 0:
        os.execv(command[0], command)
    pid1.become_init(job)


if __name__ == "__main__":
    main(sys.argv[1:])
