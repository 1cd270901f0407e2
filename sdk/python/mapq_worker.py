"""Serve a Python function as a mapq persistent worker (SPEC section 9).

A command task with ``worker: true`` keeps one process of its ``command`` per
agent slot and sends it one subtask at a time, as one JSON line on stdin::

    {"inputs": {"x": 3}, "execution": "0123456789ab", "node": "squares",
     "index": 2, "attempt": 1, "checkpoint": "/path/ck", "deadline_ms": null}

The worker answers each request with one JSON line on stdout,
``{"output": VALUE}`` or ``{"error": "message"}``, before the next one comes.
stdout carries nothing else; whatever it writes to stderr meanwhile is that
subtask's log. When the agent closes stdin, the worker exits 0. The whole
contract is in docs/PROTOCOL.md, section "Worker line protocol".

This module does all of that, with the Python standard library only. As a
library::

    from mapq_worker import serve

    def square(x):
        return x * x

    if __name__ == "__main__":
        serve(square)

or with no main of your own: ``python3 -m mapq_worker MODULE:FUNCTION``
(also ``python3 path/to/mapq_worker.py MODULE:FUNCTION``), where MODULE is a
module importable from the working directory or PYTHONPATH, or the path of a
.py file. ``--dict`` passes the inputs as one dict instead of keywords.

The function's return value is the output. An exception becomes an error
reply ("ValueError: message") and its traceback goes to stderr; the worker
carries on with the next request. While the function runs, ``current()``
describes the subtask (execution, node, index, attempt, checkpoint,
deadline_ms) and MAPQ_EXECUTION, MAPQ_NODE, MAPQ_INDEX, MAPQ_ATTEMPT and
MAPQ_CHECKPOINT are set as for ordinary command tasks. print(), and any
process the function starts, write to stderr: file descriptor 1 is stderr
and the replies go out on a copy of the real stdout; stdin is /dev/null.
"""

import importlib
import importlib.util
import json
import os
import signal
import sys
import time
import traceback

__all__ = ["Context", "current", "serve", "main"]

_current = None


class Context:
    """The subtask being served: what the request line said about it."""

    __slots__ = ("execution", "node", "index", "attempt", "checkpoint",
                 "deadline_ms")

    def __init__(self, request):
        for name in self.__slots__:
            setattr(self, name, request.get(name))

    def remaining(self):
        """Seconds left before the deadline (negative once past), or None."""
        if self.deadline_ms is None:
            return None
        return self.deadline_ms / 1000.0 - time.time()

    def load_checkpoint(self):
        """The checkpoint an earlier attempt left (bytes), or None."""
        if not self.checkpoint:
            return None
        try:
            with open(self.checkpoint, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def save_checkpoint(self, data):
        """Replace the checkpoint with data (bytes, or str as UTF-8).

        The file is written beside it and renamed, so a kill in the middle
        leaves the previous checkpoint whole."""
        if not self.checkpoint:
            raise RuntimeError("this subtask has no checkpoint path")
        if isinstance(data, str):
            data = data.encode("utf-8")
        tmp = self.checkpoint + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.checkpoint)

    def __repr__(self):
        fields = ", ".join("%s=%r" % (n, getattr(self, n))
                           for n in self.__slots__)
        return "Context(%s)" % fields


def current():
    """The Context of the subtask being served, or None between subtasks."""
    return _current


def _encode(reply):
    text = json.dumps(reply, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _error(message):
    # One line, and valid UTF-8 whatever the message held.
    message = " ".join(str(message).splitlines())
    message = message.encode("utf-8", "replace").decode("utf-8")
    return _encode({"error": message})


def _describe(exc):
    text = str(exc)
    name = type(exc).__name__
    return "%s: %s" % (name, text) if text else name


def _export(ctx):
    # The variables an ordinary command task sees, for code written for both.
    names = {"MAPQ_EXECUTION": ctx.execution, "MAPQ_NODE": ctx.node,
             "MAPQ_INDEX": ctx.index, "MAPQ_ATTEMPT": ctx.attempt,
             "MAPQ_CHECKPOINT": ctx.checkpoint}
    for name, value in names.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = str(value)


def _handle(fn, kwargs, line):
    """One request line in, one reply line (bytes) out."""
    global _current
    try:
        request = json.loads(line)
    except ValueError as e:
        return _error("request is not valid JSON: %s" % e)
    if not isinstance(request, dict) or \
            not isinstance(request.get("inputs"), dict):
        return _error('request is not a JSON object with an "inputs" object')
    _current = Context(request)
    _export(_current)
    try:
        inputs = request["inputs"]
        value = fn(**inputs) if kwargs else fn(inputs)
    except Exception as e:
        traceback.print_exc()
        return _error(_describe(e))
    finally:
        _current = None
    try:
        return _encode({"output": value})
    except (TypeError, ValueError) as e:
        print("mapq_worker: the output cannot be written as JSON: %s" % e,
              file=sys.stderr)
        return _error("output cannot be written as JSON: %s" % _describe(e))


def _take_stdio():
    """Keep the real stdin and stdout for the protocol alone.

    Returns (requests, replies): binary files on copies of descriptors 0
    and 1. Descriptor 0 becomes /dev/null and descriptor 1 stderr, so
    neither user code nor its children can read requests or write to the
    replies' stream."""
    sys.stdout.flush()
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return requests, replies


def serve(fn, kwargs=True):
    """Answer requests from stdin with fn until stdin closes, then return.

    fn gets the inputs as keyword arguments (kwargs=False: as one dict).
    SIGTERM ends the process at once; Ctrl-C exits with status 130."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:
        pass  # not the main thread: leave signals alone
    requests, replies = _take_stdio()
    try:
        for line in requests:
            reply = _handle(fn, kwargs, line)
            sys.stderr.flush()  # this subtask's log before its reply
            replies.write(reply)
            replies.flush()
    except KeyboardInterrupt:
        raise SystemExit(130)
    except BrokenPipeError:
        # The agent is gone: nobody to answer. Exit without the flush at
        # shutdown failing again.
        os._exit(1)


def _load(target):
    """The function named by MODULE:FUNCTION (MODULE may be a .py path)."""
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise ValueError("expected MODULE:FUNCTION, got %r" % target)
    if module_name.endswith(".py"):
        path = os.path.abspath(module_name)
        name = os.path.splitext(os.path.basename(path))[0]
        sys.path.insert(0, os.path.dirname(path))
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None:
            raise ImportError("cannot load %s" % path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError("%s is not callable" % target)
    return obj


def main(argv=None):
    """python3 -m mapq_worker [--dict] MODULE:FUNCTION"""
    args = sys.argv[1:] if argv is None else list(argv)
    kwargs = True
    if args and args[0] == "--dict":
        kwargs = False
        args = args[1:]
    if len(args) != 1:
        print("usage: python3 -m mapq_worker [--dict] MODULE:FUNCTION",
              file=sys.stderr)
        return 2
    # Run as a script or with -m, this file is __main__: make
    # "import mapq_worker" in the user's module find this very module, so
    # that current() there sees the subtask served here.
    sys.modules.setdefault("mapq_worker", sys.modules[__name__])
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        fn = _load(args[0])
    except Exception:
        traceback.print_exc()
        print("mapq_worker: cannot load %s" % args[0], file=sys.stderr)
        return 2
    serve(fn, kwargs=kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
