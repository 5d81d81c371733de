#!/usr/bin/python3
"""Checks HACKING.md's table of headers and sources against the tree.

Every header (include/autopkgtest_cloud/*.hpp, lib/**/*.hpp) has exactly one
row, every lib/**/*.cpp is named in some row, and every file named exists.
Usage: check_tree.py SOURCE_ROOT
"""
import pathlib
import re
import sys


def main(root):
    root = pathlib.Path(root)
    text = (root / "HACKING.md").read_text()
    section = text.split("## Headers and their sources", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    problems, headers, sources = [], {}, set()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        header = cells[0].strip("`")
        headers[header] = headers.get(header, 0) + 1
        for name in re.findall(r"`([^`]+\.cpp)`", cells[1]):
            sources.add(name)
            if not (root / name).is_file():
                problems.append(f"{header}: source {name} does not exist")
        if not (root / header).is_file():
            problems.append(f"header {header} does not exist")
    tree_headers = {str(p.relative_to(root)) for p in root.glob("include/autopkgtest_cloud/*.hpp")}
    tree_headers |= {str(p.relative_to(root)) for p in root.glob("lib/**/*.hpp")}
    for h in sorted(tree_headers - headers.keys()):
        problems.append(f"header {h} has no row in HACKING.md")
    for h, n in sorted(headers.items()):
        if n > 1:
            problems.append(f"header {h} has {n} rows")
    for cpp in sorted(str(p.relative_to(root)) for p in root.glob("lib/**/*.cpp")):
        if cpp not in sources:
            problems.append(f"source {cpp} is named in no row of HACKING.md")
    for p in problems:
        print(p)
    print(f"{len(rows)} rows, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
