"""
Converts a pytest JUnit XML report into TAP on stdout.

    junit2tap.py REPORT.xml

Prints "1..N" and one line per test: "ok K - FILE::TEST", "not ok K - ..."
(followed by the failure as "# " comments), or "ok K - ... # SKIP reason".
A test that pytest reports twice (a failure in the test and an error in its
teardown) is one TAP line, failed. Exits 1, printing nothing, when the
report cannot be read or holds no test.
"""
import sys
import xml.etree.ElementTree as ET

DIAG_LINES = 60


def test_name(case):
    """FILE::[CLASS::]NAME of a <testcase> element."""
    name = case.get("name", "?")
    classname = case.get("classname", "")
    path = case.get("file")
    if not path:
        return f"{classname.replace('.', '/')}.py::{name}" if classname else name
    module = path[:-3].replace("/", ".") if path.endswith(".py") else path
    if classname.startswith(module + "."):
        inner = classname[len(module) + 1:].replace(".", "::")
        return f"{path}::{inner}::{name}"
    return f"{path}::{name}"


def describe(text):
    """A TAP description: one line, with no unescaped '#'."""
    return " ".join(text.split()).replace("#", "\\#")


def diagnostics(element):
    lines = []
    message = element.get("message")
    if message:
        lines += message.splitlines()
    if element.text:
        lines += element.text.splitlines()
    if len(lines) > DIAG_LINES:
        lines = lines[:DIAG_LINES] + [f"... ({len(lines) - DIAG_LINES} more lines)"]
    return [f"# {line}".rstrip() for line in lines]


def convert(root):
    """Returns the TAP lines for the report <root>, or None if it is empty."""
    cases = {}
    for case in root.iter("testcase"):
        cases.setdefault(test_name(case), []).append(case)
    if not cases:
        return None

    out = [f"1..{len(cases)}"]
    for number, (name, elements) in enumerate(cases.items(), start=1):
        problems = [child for case in elements for child in case
                    if child.tag in ("failure", "error")]
        skips = [child for case in elements for child in case if child.tag == "skipped"]
        if problems:
            out.append(f"not ok {number} - {describe(name)}")
            for problem in problems:
                out += diagnostics(problem)
        elif skips:
            reason = describe(skips[0].get("message") or "skipped")
            out.append(f"ok {number} - {describe(name)} # SKIP {reason}")
        else:
            out.append(f"ok {number} - {describe(name)}")
    return out


def main(argv):
    if len(argv) != 2:
        print("usage: junit2tap.py REPORT.xml", file=sys.stderr)
        return 2
    try:
        root = ET.parse(argv[1]).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"junit2tap: cannot read {argv[1]}: {e}", file=sys.stderr)
        return 1
    lines = convert(root)
    if lines is None:
        print(f"junit2tap: {argv[1]} holds no test", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
