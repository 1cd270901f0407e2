"""The worker helpers of sdk/ and examples/workers/, driven over real pipes.

Each test starts the helper as the agent would (python3 -m mapq_worker
MODULE:FUNCTION, or sh square_worker.sh), writes request lines to its stdin
and reads reply lines from its stdout, every wait bounded. The source tree
is $MAPQ_SOURCE_DIR, or found from this file's place in it.
"""

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

SRC = os.environ.get("MAPQ_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SDK = os.path.join(SRC, "sdk", "python")
EXAMPLES = os.path.join(SRC, "examples", "workers")
WAIT = 20.0  # seconds: the bound on every wait

# The module the workers serve in most tests.
FUNCS = textwrap.dedent('''
    import os
    import sys

    import mapq_worker


    def square(x):
        return x * x


    def echo(**inputs):
        return inputs


    def fail(x):
        if x < 0:
            raise ValueError("negative x: %d" % x)
        return x


    def noisy(x):
        print("printed by noisy", x)
        sys.stdout.write("written by noisy\\n")
        os.write(1, b"raw fd 1 by noisy\\n")
        os.system("echo child of noisy")
        sys.stdout.write("partial line of noisy %d" % x)
        return x


    def unencodable(kind):
        return {"nan": float("nan"), "set": {1, 2}, "inf": float("inf")}[kind]


    def context(**inputs):
        ctx = mapq_worker.current()
        old = ctx.load_checkpoint()
        ctx.save_checkpoint("saved by attempt %d" % ctx.attempt)
        return {"execution": ctx.execution, "node": ctx.node,
                "index": ctx.index, "attempt": ctx.attempt,
                "checkpoint": ctx.checkpoint, "deadline_ms": ctx.deadline_ms,
                "old": old.decode() if old is not None else None,
                "env_index": os.environ.get("MAPQ_INDEX"),
                "env_checkpoint": os.environ.get("MAPQ_CHECKPOINT")}


    def outside():
        return mapq_worker.current() is not None


    def read_stdin():
        return sys.stdin.read()


    def whole(inputs):
        return sorted(inputs)
''')


class Worker:
    """A worker process and the agent's ends of its pipes."""

    def __init__(self, argv, cwd, pythonpath=None):
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONUNBUFFERED", None)  # buffered, as usual on a pipe
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(pythonpath)
        self.err = tempfile.TemporaryFile(dir=cwd)
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env,
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err,
                                     bufsize=0)
        self.buf = b""

    def send(self, request):
        line = request if isinstance(request, bytes) else \
            json.dumps(request).encode() + b"\n"
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def _read(self, until_eof):
        """Read stdout until a whole line is buffered, or until EOF.

        AssertionError after WAIT seconds, or at an EOF before a line."""
        end = time.monotonic() + WAIT
        while until_eof or b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("nothing within %.0f s; stderr: %s"
                                     % (WAIT, self.stderr()))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk and until_eof:
                return
            if not chunk:
                raise AssertionError("stdout closed; stderr: %s"
                                     % self.stderr())
            self.buf += chunk

    def raw_line(self):
        """The next line on stdout, newline included."""
        self._read(False)
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self):
        return json.loads(self.raw_line())

    def ask(self, request):
        self.send(request)
        return self.reply()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def close(self):
        """Close stdin; the exit status and whatever else came on stdout."""
        self.proc.stdin.close()
        self._read(True)
        rest, self.buf = self.buf, b""
        return self.proc.wait(timeout=WAIT), rest

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.err):
            try:
                f.close()
            except OSError:
                pass


def request(inputs, **fields):
    r = {"inputs": inputs, "execution": "0123456789ab", "node": "n",
         "index": 0, "attempt": 1, "checkpoint": None, "deadline_ms": None}
    r.update(fields)
    return r


class WorkerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mapq-sdk-")
        with open(os.path.join(self.dir, "funcs.py"), "w") as f:
            f.write(FUNCS)
        self.workers = []

    def tearDown(self):
        for w in self.workers:
            w.kill()
        shutil.rmtree(self.dir)

    def start(self, target, *options, pythonpath=(SDK,), script=False):
        head = [sys.executable, os.path.join(SDK, "mapq_worker.py")] \
            if script else [sys.executable, "-m", "mapq_worker"]
        w = Worker(head + list(options) + [target], self.dir,
                   list(pythonpath))
        self.workers.append(w)
        return w

    def test_output_is_one_compact_line(self):
        w = self.start("funcs:square")
        w.send(request({"x": 7}))
        self.assertEqual(w.raw_line(), b'{"output":49}\n')
        w2 = self.start("funcs:echo")
        w2.send(request({"s": "\u00e9t\u00e9", "l": [1.5, None, True]}))
        self.assertEqual(w2.raw_line(), '{"output":{"s":"\u00e9t\u00e9",'
                         '"l":[1.5,null,true]}}\n'.encode("utf-8"))

    def test_many_requests_in_sequence(self):
        w = self.start("funcs:square")
        for i in range(200):  # all written before any reply is read
            w.send(request({"x": i}, index=i))
        self.assertEqual([w.reply() for _ in range(200)],
                         [{"output": i * i} for i in range(200)])
        status, rest = w.close()
        self.assertEqual((status, rest), (0, b""))

    def test_exception_is_an_error_reply_and_the_worker_goes_on(self):
        w = self.start("funcs:fail")
        self.assertEqual(w.ask(request({"x": -3})),
                         {"error": "ValueError: negative x: -3"})
        err = w.stderr()  # written before the reply
        self.assertIn("Traceback (most recent call last)", err)
        self.assertIn('in fail', err)
        self.assertEqual(w.ask(request({"x": 4})), {"output": 4})
        self.assertEqual(w.ask(request({"y": 4}))["error"][:10], "TypeError:")
        self.assertEqual(w.close(), (0, b""))

    def test_print_and_children_do_not_reach_stdout(self):
        w = self.start("funcs:noisy")
        self.assertEqual(w.ask(request({"x": 1})), {"output": 1})
        # The subtask's log is all out before its reply, unfinished line
        # included.
        err = w.stderr()
        self.assertIn("printed by noisy 1", err)
        self.assertTrue(err.endswith("partial line of noisy 1"), err)
        self.assertEqual(w.ask(request({"x": 2})), {"output": 2})
        status, rest = w.close()
        self.assertEqual((status, rest), (0, b""))
        err = w.stderr()
        for text in ("printed by noisy 1", "written by noisy",
                     "raw fd 1 by noisy", "child of noisy",
                     "printed by noisy 2"):
            self.assertIn(text, err)

    def test_user_code_cannot_read_requests(self):
        w = self.start("funcs:read_stdin")
        w.send(request({}))
        self.assertEqual(w.reply(), {"output": ""})

    def test_invalid_json_gets_an_error_reply(self):
        w = self.start("funcs:square")
        for bad in (b"not json\n", b'{"inputs": {"x": 1}\n', b"[1, 2]\n",
                    b'{"x": 1}\n', b'{"inputs": [1]}\n', b"\xff\xfe\n"):
            reply = w.ask(bad)
            self.assertEqual(list(reply), ["error"], bad)
            self.assertTrue(reply["error"].startswith("request is not"), bad)
            self.assertEqual(w.ask(request({"x": 5})), {"output": 25})
        self.assertIn("valid JSON", w.ask(b"nope\n")["error"])
        self.assertEqual(w.close(), (0, b""))

    def test_unencodable_output_is_an_error_reply(self):
        w = self.start("funcs:unencodable")
        for kind, problem in (("nan", "Out of range float"),
                              ("inf", "Out of range float"),
                              ("set", "not JSON serializable")):
            reply = w.ask(request({"kind": kind}))
            self.assertEqual(list(reply), ["error"])
            self.assertTrue(reply["error"].startswith(
                "output cannot be written as JSON"), reply)
            self.assertIn(problem, reply["error"])
        w2 = self.start("funcs:echo")
        reply = w2.ask(b'{"inputs": {"s": "\\ud800"}}\n')  # lone surrogate
        self.assertIn("cannot be written as JSON", reply["error"])
        self.assertEqual(w2.ask(request({"a": 1})), {"output": {"a": 1}})

    def test_eof_exits_0(self):
        w = self.start("funcs:square")
        self.assertEqual(w.close(), (0, b""))
        w = self.start("funcs:square")
        self.assertEqual(w.ask(request({"x": 2})), {"output": 4})
        self.assertEqual(w.close(), (0, b""))

    def test_context_and_checkpoint(self):
        ck = os.path.join(self.dir, "ck")
        w = self.start("funcs:context")
        first = w.ask(request({"a": 1}, execution="feedbeef0001", node="sq",
                              index=41, attempt=1, checkpoint=ck,
                              deadline_ms=1893456000000))
        self.assertEqual(first, {"output": {
            "execution": "feedbeef0001", "node": "sq", "index": 41,
            "attempt": 1, "checkpoint": ck, "deadline_ms": 1893456000000,
            "old": None, "env_index": "41", "env_checkpoint": ck}})
        with open(ck) as f:
            self.assertEqual(f.read(), "saved by attempt 1")
        second = w.ask(request({}, index=41, attempt=2, checkpoint=ck))
        self.assertEqual(second["output"]["old"], "saved by attempt 1")
        self.assertEqual(second["output"]["attempt"], 2)
        self.assertIsNone(second["output"]["deadline_ms"])
        with open(ck) as f:
            self.assertEqual(f.read(), "saved by attempt 2")
        self.assertFalse(os.path.exists(ck + ".tmp"))
        w2 = self.start("funcs:outside")
        self.assertEqual(w2.ask(request({})), {"output": True})

    def test_script_path_and_dict_mode(self):
        # Run as a file, not -m, the user's "import mapq_worker" must still
        # see the subtask being served.
        ck = os.path.join(self.dir, "ck")
        w = self.start("funcs:context", pythonpath=(), script=True)
        out = w.ask(request({}, index=3, checkpoint=ck))["output"]
        self.assertEqual((out["index"], out["checkpoint"]), (3, ck))
        w2 = self.start("funcs:whole", "--dict")
        self.assertEqual(w2.ask(request({"b": 1, "a": 2})),
                         {"output": ["a", "b"]})
        w3 = self.start(os.path.join(self.dir, "funcs.py") + ":square",
                        pythonpath=(), script=True)
        self.assertEqual(w3.ask(request({"x": 9})), {"output": 81})

    def test_library_serve(self):
        with open(os.path.join(self.dir, "main.py"), "w") as f:
            f.write("from mapq_worker import serve\n"
                    "serve(lambda inputs: len(inputs), kwargs=False)\n"
                    "print('after serve')\n")
        w = Worker([sys.executable, "main.py"], self.dir, [SDK])
        self.workers.append(w)
        self.assertEqual(w.ask(request({"a": 1, "b": 2})), {"output": 2})
        self.assertEqual(w.close(), (0, b""))
        self.assertIn("after serve", w.stderr())

    def test_bad_target_fails_to_start(self):
        for target in ("nosuchmodule:f", "funcs:nosuchfunction", "funcs"):
            w = self.start(target)
            status, rest = w.close()
            self.assertEqual((status, rest), (2, b""), target)
            self.assertIn("mapq_worker", w.stderr())

    def test_example_functions(self):
        ck = os.path.join(self.dir, "ck")
        w = self.start("square:square", pythonpath=(SDK, EXAMPLES))
        self.assertEqual(w.ask(request({"x": -12})), {"output": 144})
        w = self.start("square:resumable_sum", pythonpath=(SDK, EXAMPLES))
        n = 250000
        self.assertEqual(w.ask(request({"n": n}, checkpoint=ck)),
                         {"output": sum(range(n))})
        with open(ck) as f:
            self.assertEqual(json.load(f), [200000, sum(range(200000))])
        self.assertEqual(w.ask(request({"n": n}, attempt=2, checkpoint=ck)),
                         {"output": sum(range(n))})
        self.assertIn("attempt 2 resumes at 200000", w.stderr())


class ShellWorkerTest(unittest.TestCase):
    def test_square_worker_sh(self):
        d = tempfile.mkdtemp(prefix="mapq-sdk-")
        self.addCleanup(shutil.rmtree, d)
        w = Worker(["sh", os.path.join(EXAMPLES, "square_worker.sh")], d)
        self.addCleanup(w.kill)
        self.assertEqual(w.ask(request({"x": 3}, node="x")), {"output": 9})
        self.assertEqual(w.ask(b'{"inputs": {"x": -4}, "index": 1}\n'),
                         {"output": 16})
        self.assertEqual(w.ask(request({"x": 0})), {"output": 0})
        for bad in (request({"x": 1.5}), request({"x": "7"}),
                    request({"y": 1}), b"garbage\n"):
            self.assertEqual(list(w.ask(bad)), ["error"], bad)
        self.assertEqual(w.ask(request({"x": 100000})),
                         {"output": 10000000000})
        self.assertEqual(w.close(), (0, b""))
        self.assertIn("squaring 100000", w.stderr())


if __name__ == "__main__":
    unittest.main()
