"""docs/python.md keeps its word: its ```python blocks, in order, run as one script against a
real daemon (with $MMAPD_SOCKET set, as the tour says), and what the script prints is the
concatenation of the ```output blocks."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

from harness import HAVE_NUMPY, TOP, DaemonTest

DOC = os.path.join(TOP, "docs", "python.md")


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(r"^```" + lang + r"\n(.*?)^```$", text, flags=re.S | re.M)


class TestDoc(DaemonTest):
    @unittest.skipUnless(HAVE_NUMPY, "the tour uses NumPy, which is not installed")
    def test_tour_runs_as_written(self):
        with open(DOC) as f:
            text = f.read()
        script = "\n".join(blocks(text, "python"))
        expected = "".join(blocks(text, "output"))
        self.assertGreater(script.count("\n"), 50)
        env = dict(self.d.env(), PYTHONPATH=os.path.join(TOP, "python"))
        with tempfile.TemporaryDirectory() as cwd:
            p = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd,
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, expected)


if __name__ == "__main__":
    unittest.main()
