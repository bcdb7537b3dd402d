"""The ctypes mirror of libmmapd's public structs against the C compiler's view of the
headers: every struct's size and the offsets of its fields, as mmapd-pypeer (built against
the installed-layout headers) prints them. A field added to a struct, or moved, fails here."""
import ctypes
import unittest

from harness import PYPEER, mmapd, run_plain

from mmapd import _lib


class TestAbi(unittest.TestCase):
    def test_struct_sizes_and_offsets_match_the_headers(self):
        out = run_plain(PYPEER, "sizes")
        structs = fields = 0
        for line in out.splitlines():
            kind, name, value = line.split()
            if kind == "struct":
                self.assertEqual(ctypes.sizeof(_lib.STRUCTS[name]), int(value),
                                 f"sizeof(struct {name})")
                structs += 1
            else:
                sname, field = name.split(".")
                self.assertTrue(hasattr(_lib.STRUCTS[sname], field),
                                f"struct {sname} has a field {field} the mirror lacks")
                self.assertEqual(getattr(_lib.STRUCTS[sname], field).offset, int(value),
                                 f"offsetof(struct {sname}, {field})")
                fields += 1
        self.assertEqual(structs, len(_lib.STRUCTS))
        self.assertGreater(fields, 40)

    def test_library_version(self):
        self.assertRegex(mmapd.library_version(), r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()
