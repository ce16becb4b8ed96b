"""Baseline for bench/pipeline.rs: the same work on the same pages with the Python stack that
changedetection.io's text_json_diff processor uses (BeautifulSoup for CSS filters, inscriptis for
HTML to text, re for ignore rules, hashlib md5, difflib for the line diff), and the notification
rendered the way its notification handler does it (difflib line diff with diff-match-patch inside
changed lines, jinja2's sandbox, placemarkers to text/HTML).

Run by `make bench` beside the criterion benchmarks so that figures are reported as ratios.
Prints one line per case: name, median milliseconds over the runs.
"""
import difflib
import hashlib
import os
import re
import statistics
import sys
import time

from bs4 import BeautifulSoup
from diff_match_patch import diff_match_patch
from inscriptis import get_text
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape


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


# --- Notification rendering, after upstream's diff/__init__.py and notification/handler.py ---

# upstream's default notification title and body
TITLE = "ChangeDetection.io Notification - {{watch_url}}"
BODY = "{{watch_url}} had a change.\n---\n{{diff}}\n---\n"
WATCH_URL = "http://bench.test/"

# Placemarkers: the diff marks its changes with these; the handler turns them into the format's
# markup only after the template has been rendered.
MARKERS = ("removed", "added", "changed", "changed_into")
OPEN = {m: f"@{m}_PLACEMARKER_OPEN" for m in MARKERS}
CLOSE = {m: f"@{m}_PLACEMARKER_CLOSED" for m in MARKERS}
TEXT_MARKUP = {"removed": "(removed) ", "added": "(added) ", "changed": "(changed) ", "changed_into": "(into) "}
RED = "background-color: #fadad7; color: #b30000;"
GREEN = "background-color: #eaf2c2; color: #406619;"
SPAN_MARKUP = {
    "removed": f'<span style="{RED}" role="deletion" aria-label="Removed text" title="Removed text">',
    "added": f'<span style="{GREEN}" role="insertion" aria-label="Added text" title="Added text">',
    "changed": f'<span style="{RED}" role="note" aria-label="Changed text" title="Changed text">',
    "changed_into": f'<span style="{GREEN}" role="note" aria-label="Changed into" title="Changed into">',
}
NEWLINE = re.compile(r"\r\n|\r|\n")
TOKEN = re.compile(r"<[^>]*>|\s|[^\s<]+|<")  # HTML tags whole, each whitespace char, words


def wrap(marker, text):
    # Trailing whitespace stays outside the marker, as upstream does.
    content = text.rstrip()
    if not content:
        return text
    return f"{OPEN[marker]}{content}{CLOSE[marker]}{text[len(content):]}"


def word_diff_line(before, after):
    """One changed line against its replacement, word by word (diff-match-patch in line mode over
    one token per "line", as upstream)."""
    dmp = diff_match_patch()
    a, b, tokens = dmp.diff_linesToChars("\n".join(TOKEN.findall(before)), "\n".join(TOKEN.findall(after or " ")))
    ops = dmp.diff_main(a, b, False)
    dmp.diff_charsToLines(ops, tokens)
    ops = [(op, t.replace("\n", "")) for op, t in ops]
    if not any(op == 0 and t.strip() for op, t in ops):
        # Nothing in common: the old line as "changed", the new one as "changed into".
        old = "".join(t for op, t in ops if op <= 0)
        new = "".join(t for op, t in ops if op >= 0)
        return wrap("changed", old) + "\n" + wrap("changed_into", new)
    return "".join(t if op == 0 else wrap("added" if op == 1 else "removed", t) for op, t in ops)


def changes_diff(prev, current, word_diff):
    """Upstream's render_diff with the notification's defaults: changed lines only, marked."""
    a = [line.rstrip() for line in prev.splitlines()]
    b = [line.rstrip() for line in current.splitlines()]
    out = []
    # upstream's junk rule; `"" in " \t"` holds, so every blank line is junk to the matcher, which
    # makes it far slower on these pages than diff/lines_text's plain matcher
    matcher = difflib.SequenceMatcher(isjunk=lambda x: x in " \t", a=a, b=b)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            out.extend(f"{OPEN['removed']}{line}{CLOSE['removed']}" for line in a[i1:i2])
        elif tag == "insert":
            out.extend(f"{OPEN['added']}{line}{CLOSE['added']}" for line in b[j1:j2])
        elif tag == "replace":
            if word_diff and i2 - i1 == 1 and j2 - j1 == 1:
                out.append(word_diff_line(a[i1], b[j1]))
            else:
                out.extend(f"{OPEN['changed']}{line}{CLOSE['changed']}" for line in a[i1:i2])
                out.extend(f"{OPEN['changed_into']}{line}{CLOSE['changed_into']}" for line in b[j1:j2])
    return "\n".join(out)


def placemarkers(text, markup):
    for m in MARKERS:
        text = text.replace(OPEN[m], markup[m]).replace(CLOSE[m], "" if markup is TEXT_MARKUP else "</span>")
    return text


def jinja_render(template, **values):
    # upstream builds a fresh sandboxed environment for every render and caps the output at 10 MB
    env = ImmutableSandboxedEnvironment()
    return env.from_string(template).render(values)[: 10 * 1024 * 1024]


def notification(prev, current, fmt):
    html = fmt == "htmlcolor"
    # word-level diff inside changed lines except for text, which would be too hard to read
    diff = changes_diff(prev, current, word_diff=html)
    if html:
        diff = str(escape(diff))  # page text is escaped for HTML bodies (GHSA-q8xq-qg4x-wphg)
    values = {"watch_url": WATCH_URL, "base_url": "", "watch_uuid": "bench", "diff": diff,
              "prev_snapshot": prev, "current_snapshot": current}
    body = jinja_render(BODY, **values)
    title = placemarkers(jinja_render(TITLE, **values), TEXT_MARKUP)
    if html:
        body = body.replace("  ", "&nbsp;&nbsp;")
        body = NEWLINE.sub("<br>\n", placemarkers(body, SPAN_MARKUP))
    else:
        body = placemarkers(body, TEXT_MARKUP)
    return title, body


def snapshot(label, name):
    # Written by bench/pipeline.rs (changewatch's text of the page), so that both render from
    # byte-identical snapshots; both print this line.
    path = os.path.join(os.path.dirname(__file__), "..", "target", "bench-snapshots", f"{label}-{name}.txt")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run the criterion benches first (make bench does)")
    with open(path, "rb") as f:
        raw = f.read()
    print(f"# snapshot {label} {name}: {len(raw)} bytes md5 {hashlib.md5(raw).hexdigest()}", file=sys.stderr)
    return raw.decode("utf-8")


def median_ms(fn, runs, warm_up=True):
    if warm_up:
        fn()
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
        prev, current = snapshot(label, "prev"), snapshot(label, "current")
        if size > 100_000 and os.environ.get("BASELINE_QUICK"):
            continue
        for fmt in ("text", "htmlcolor"):
            if size < 100_000:
                ms = median_ms(lambda: notification(prev, current, fmt), runs)
            else:
                # Minutes per render (difflib's worst case, see bench/README.md): one run, no warm-up.
                ms = median_ms(lambda: notification(prev, current, fmt), 1, warm_up=False)
            print(f"notification/render_{fmt}/{label} {ms:.2f}")


if __name__ == "__main__":
    main()
