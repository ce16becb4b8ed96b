// What the browser steps need from inside the page, one call per look: find an element as
// Playwright's selectors do (CSS, `xpath=`, a leading `/` or `..`, `text=`), report whether
// it is there and visible, and do the small DOM edits some steps are. Every answer is
// `{state: "ok" | "missing" | "hidden" | "error", ...}`; a thrown exception becomes "error"
// so a bad selector is reported at once instead of being waited for.
(function (op, sel, val) {
  "use strict";
  const norm = (s) => String(s || "").replace(/\s+/g, " ").trim().toLowerCase();
  const skipped = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "HEAD", "TITLE"]);
  function byText(text) {
    const want = norm(text);
    if (!want || !document.body) return [];
    const hits = [];
    for (const el of document.body.querySelectorAll("*")) {
      if (skipped.has(el.tagName)) continue;
      if (norm(el.innerText !== undefined ? el.innerText : el.textContent).includes(want)) hits.push(el);
    }
    // The innermost elements: a match whose descendants do not match themselves.
    return hits.filter((el) => !hits.some((o) => o !== el && el.contains(o)));
  }
  function all(s) {
    s = String(s || "").trim();
    if (s.startsWith("text=")) return byText(s.slice(5));
    let xpath = null;
    if (s.startsWith("xpath=")) xpath = s.slice(6);
    else if (s.startsWith("/") || s.startsWith("..") || s.startsWith("(/")) xpath = s;
    if (xpath !== null) {
      const r = document.evaluate(xpath, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
      const out = [];
      for (let i = 0; i < r.snapshotLength; i++) {
        const n = r.snapshotItem(i);
        if (n && n.nodeType === Node.ELEMENT_NODE) out.push(n);
      }
      return out;
    }
    if (s.startsWith("css=")) s = s.slice(4);
    return Array.from(document.querySelectorAll(s));
  }
  function visible(el) {
    const r = el.getBoundingClientRect();
    const st = window.getComputedStyle(el);
    return r.width > 0 && r.height > 0 && st.visibility !== "hidden" && st.display !== "none";
  }
  function located(el) {
    if (!el) return { state: "missing" };
    if (!visible(el)) return { state: "hidden" };
    el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
    const r = el.getBoundingClientRect();
    return { state: "ok", x: r.left + r.width / 2, y: r.top + r.height / 2, checked: !!el.checked };
  }
  function fire(el, type) {
    el.dispatchEvent(new Event(type, { bubbles: true }));
  }
  try {
    switch (op) {
      case "locate":
        return located(all(sel)[0]);
      case "locate_text": {
        const hits = byText(val);
        return located(hits.find(visible) || hits[0]);
      }
      case "checked": {
        const el = all(sel)[0];
        return el ? { state: "ok", checked: !!el.checked } : { state: "missing" };
      }
      case "focus": {
        const el = all(sel)[0];
        if (!el) return { state: "missing" };
        if (el.disabled || el.readOnly) return { state: "error", message: "the field is disabled or read-only" };
        el.focus();
        if (typeof el.select === "function") el.select();
        else if (el.isContentEditable) {
          const range = document.createRange();
          range.selectNodeContents(el);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
        } else return { state: "error", message: "the element is not a text field" };
        if (val === "") {
          if (typeof el.select === "function") el.value = "";
          else el.textContent = "";
          fire(el, "input");
          fire(el, "change");
        }
        return { state: "ok" };
      }
      case "select": {
        const el = all(sel)[0];
        if (!el) return { state: "missing" };
        if (el.tagName !== "SELECT") return { state: "error", message: "the element is not a <select>" };
        const want = String(val).trim();
        const option = Array.from(el.options).find((o) => (o.label || o.text).trim() === want);
        if (!option) return { state: "missing" };
        el.value = option.value;
        option.selected = true;
        fire(el, "input");
        fire(el, "change");
        return { state: "ok" };
      }
      case "text":
        return document.body && document.body.innerText.includes(val) ? { state: "ok" } : { state: "missing" };
      case "text_in": {
        const el = all(sel)[0];
        return el && (el.innerText || "").includes(val) ? { state: "ok" } : { state: "missing" };
      }
      case "remove": {
        const els = all(sel);
        els.forEach((el) => el.remove());
        return { state: "ok", count: els.length };
      }
      case "reveal": {
        const els = all(sel);
        for (const root of els) {
          for (const el of root.querySelectorAll("*")) {
            el.style.display = "block";
            el.style.visibility = "visible";
            el.style.opacity = "1";
            el.style.position = "relative";
            el.style.height = "auto";
            el.style.width = "auto";
            el.removeAttribute("hidden");
            el.classList.remove("hidden", "d-none");
          }
        }
        return { state: "ok", count: els.length };
      }
      case "scroll":
        window.scrollBy(0, 600);
        return { state: "ok" };
      default:
        return { state: "error", message: "unknown page operation " + op };
    }
  } catch (e) {
    return { state: "error", message: String((e && e.message) || e) };
  }
})
