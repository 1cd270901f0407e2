"""Functions served by persistent workers (examples/workers/worker.yaml).

Each is a plain Python function; sdk/python/mapq_worker.py turns it into a
worker: python3 -m mapq_worker square:square
"""

import json

from mapq_worker import current


def square(x):
    return x * x


def total(xs):
    return sum(xs)


def resumable_sum(n):
    """Sum 0..n-1, saving progress every 100,000 steps.

    A retry after a timeout or an interruption starts from the last
    checkpoint instead of from 0. The checkpoint is the subtask's own file,
    kept by mapq between its attempts exactly like $MAPQ_CHECKPOINT."""
    ctx = current()
    saved = ctx.load_checkpoint()
    i, acc = json.loads(saved) if saved else (0, 0)
    if i:
        print("attempt %d resumes at %d" % (ctx.attempt, i))  # to the log
    while i < n:
        acc += i
        i += 1
        if i % 100000 == 0:
            ctx.save_checkpoint(json.dumps([i, acc]))
    return acc
