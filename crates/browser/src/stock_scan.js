// The page side of the restock processor's out-of-stock scan (upstream's
// stock-not-in-stock.js does the same walk): the own text of every visible element (an
// input's value) whose bottom edge lies between 300 and 1300 CSS pixels from the top of the
// page, in document order. The phrases are matched in Rust (changewatch_core::restock::
// stock_scan), so one list serves every fetcher. Bounded: a hostile page with millions of
// elements or megabytes of text costs at most MAX_ELEMENTS visits and MAX_TEXTS * MAX_LEN
// characters.
(() => {
  const MAX_ELEMENTS = 50000;
  const MAX_TEXTS = 5000;
  const MAX_LEN = 1000;
  const TOP = 300;
  const BOTTOM = 1300;
  const texts = [];
  const shown = (el) => {
    const s = window.getComputedStyle(el);
    return s.display !== 'none' && s.visibility !== 'hidden' && s.contentVisibility !== 'hidden';
  };
  const ownText = (el) => {
    if (el.tagName === 'INPUT') return String(el.value || '');
    let text = '';
    for (const node of el.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) text += node.textContent;
      if (text.length > MAX_LEN) break;
    }
    return text;
  };
  if (!document.body) return texts;
  // Depth first in document order: children pushed last-first.
  const stack = [document.body];
  let visited = 0;
  while (stack.length && visited < MAX_ELEMENTS && texts.length < MAX_TEXTS) {
    const el = stack.pop();
    visited++;
    const bottom = el.getBoundingClientRect().bottom + window.scrollY;
    if (bottom > TOP && bottom < BOTTOM) {
      const text = ownText(el).trim();
      if (text) texts.push(text.slice(0, MAX_LEN));
    }
    const children = el.children;
    for (let i = children.length - 1; i >= 0; i--) {
      if (shown(children[i])) stack.push(children[i]);
    }
  }
  return texts;
})()
