#!/usr/bin/env python3
"""Runs the shared feedparser checker (tools/validate/feedparser_check.py) over many saved feeds
in one Python process. Usage: feedparser_many.py CHECKER FILE... ; exit 1 if any feed fails."""
import contextlib
import importlib.util
import io
import sys


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    spec = importlib.util.spec_from_file_location("feedparser_check", argv[1])
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    failed = 0
    for path in argv[2:]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = checker.main(["feedparser_check.py", path])
        if rc != 0:
            failed += 1
            print("FAIL %s\n%s" % (path, out.getvalue()))
    print("%d feeds checked with feedparser, %d failed" % (len(argv) - 2, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
