"""Baseline for bench/pipeline.rs: the same work on the same pages with the Python stack that
changedetection.io's text_json_diff processor uses (BeautifulSoup for CSS filters, inscriptis for
HTML to text, re for ignore rules, hashlib md5, difflib for the line diff).

Run by `make bench` beside the criterion benchmarks so that figures are reported as ratios.
Prints one line per case: name, median milliseconds over the runs.
"""
import difflib
import hashlib
import re
import statistics
import sys
import time

from bs4 import BeautifulSoup
from inscriptis import get_text


def page_of(target, version):
    # Must produce byte-for-byte the page bench/pipeline.rs builds (checked by length and md5).
    body = ("<!DOCTYPE html><html><head><title>Bench Gazette</title><style>body{font:serif}</style>"
            "<script>var tracking = 'x';</script></head><body><nav><a href=/>Home</a> <a href=/w>World</a></nav><main>")
    parts = [body]
    size = len(body.encode())
    i = 0
    while size < target:
        price = 10 + version if i % 7 == 0 else 10
        m = i % 60
        s = (f"<article class=story id=s{i}><h2>Story {i}: harbour news</h2>"
             f"<p>The <b>ferry</b> number {i} leaves at 06:{m:02}. Passengers should check the timetable.</p>"
             f"<table class=prices><tr><td>Cod</td><td>£{price}.40</td></tr><tr><td>Hake</td><td>£9.{m:02}</td></tr></table>"
             f"<div class=ad>Advert {i}</div></article>")
        parts.append(s)
        size += len(s.encode())
        i += 1
    parts.append("</main><footer>Visitors: 1234</footer></body></html>")
    return "".join(parts)


def html_to_text(html):
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(["head", "script", "style", "noscript", "svg", "math", "canvas", "iframe", "template"]):
        tag.decompose()
    return get_text(str(soup))


IGNORE = [re.compile(r"(?i)visitors: \d+")]


def checksum(text):
    kept = [line for line in text.splitlines(keepends=True) if not any(r.search(line) for r in IGNORE)]
    squeezed = "".join(kept).translate(str.maketrans("", "", "\r\n\t "))
    return hashlib.md5(squeezed.encode()).hexdigest()


def filter_text_hash(html):
    soup = BeautifulSoup(html, "html.parser")
    for el in soup.select(".ad"):
        el.decompose()
    soup = BeautifulSoup(str(soup), "html.parser")
    filtered = "<br>".join(str(el) for el in soup.select("main"))
    text = html_to_text(filtered)
    return text, checksum(text)


def text_hash_no_filters(html):
    text = html_to_text(html)
    return checksum(text)


def line_diff(before, after):
    a = [l.rstrip() for l in before.splitlines()]
    b = [l.rstrip() for l in after.splitlines()]
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag == "equal":
            out.extend(a[i1:i2])
        elif tag == "delete":
            out.extend(f"(removed) {l}" for l in a[i1:i2])
        elif tag == "insert":
            out.extend(f"(added) {l}" for l in b[j1:j2])
        else:
            out.extend(f"(changed) {l}" for l in a[i1:i2])
            out.extend(f"(into) {l}" for l in b[j1:j2])
    return "\n".join(out)


def median_ms(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    for label, size in (("50KB", 50 * 1024), ("1MB", 1024 * 1024)):
        html = page_of(size, 0)
        raw = html.encode()
        print(f"# page {label}: {len(raw)} bytes md5 {hashlib.md5(raw).hexdigest()}", file=sys.stderr)
        runs = 20 if size < 100_000 else 5
        print(f"pipeline/filter_text_hash/{label} {median_ms(lambda: filter_text_hash(html), runs):.2f}")
        print(f"pipeline/text_hash_no_filters/{label} {median_ms(lambda: text_hash_no_filters(html), runs):.2f}")
        before, _ = filter_text_hash(html)
        after, _ = filter_text_hash(page_of(size, 1))
        print(f"diff/lines_text/{label} {median_ms(lambda: line_diff(before, after), runs):.2f}")


if __name__ == "__main__":
    main()
