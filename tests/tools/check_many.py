#!/usr/bin/env python3
"""Runs one of the shared checkers (tools/validate/*_check.py, which expose main(argv)) over many
saved documents in one Python process. Usage: check_many.py CHECKER FILE...
Prints each failure with the checker's output, then "N files checked with NAME, M failed"; exits 1
if any failed."""
import contextlib
import importlib.util
import io
import os
import sys


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    name = os.path.basename(argv[1])
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), argv[1])
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    failed = 0
    for path in argv[2:]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = checker.main([name, path])
        if rc != 0:
            failed += 1
            print("FAIL %s\n%s" % (path, out.getvalue()))
    print("%d files checked with %s, %d failed" % (len(argv) - 2, name, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
