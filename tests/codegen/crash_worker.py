"""A task function for tests of codegen's worker pool: it dies like a crashing compiler on "crash"."""

import os


def double_or_crash(task):
    if task == "crash":
        os.abort()  # as TVM's segfault handler ends a worker
    return 2 * task
