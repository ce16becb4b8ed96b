// DOM helpers. Everything here builds nodes with createElement / textContent / setAttribute:
// strings passed in are always text, never markup, so attacker-controlled titles, URLs, page
// text and error messages cannot inject HTML. The only place HTML from the server is turned
// into nodes is sanitizeDiffHtml() below.

export type Child = Node | string | number | null | undefined | false | Child[];

type Handler = (ev: Event) => void;
export type AttrValue = string | number | boolean | null | undefined | Handler;
export type Attrs = Record<string, AttrValue>;

/** Properties that must be set as DOM properties (not attributes) to reflect the live state. */
const PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'indeterminate', 'hidden']);

/**
 * h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child) -> element.
 * `on<event>` keys with a function value become listeners; `true` booleans become empty
 * attributes; null / undefined / false are skipped.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined) continue;
      if (key === 'innerHTML' || key === 'outerHTML') {
        // Guard against accidental use: this helper only ever produces text.
        throw new Error('h(): innerHTML is not allowed');
      }
      if (typeof value === 'function') {
        if (!key.startsWith('on')) throw new Error(`h(): function for non-event attribute ${key}`);
        el.addEventListener(key.slice(2), value);
      } else if (PROPS.has(key)) {
        (el as unknown as Record<string, unknown>)[key] = key === 'value' ? String(value) : Boolean(value);
      } else if (key === 'class') {
        if (value !== false) el.className = String(value);
      } else if (value === true) {
        el.setAttribute(key, '');
      } else if (value !== false) {
        el.setAttribute(key, String(value));
      }
    }
  }
  append(el, children);
  return el;
}

/** Appends children (strings become text nodes). */
export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** Sets text only when it changed (avoids needless layout work on frequent live updates). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Returns `url` if it is an absolute http(s) URL, else null. Used for every href that points
 * at a watched site: `javascript:`, `data:` and friends must never become clickable.
 */
export function safeHttpUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return parsed.href;
  } catch {
    /* not a URL */
  }
  return null;
}

/**
 * A link to a watched (external) site: opens in a new tab without giving the site a handle
 * on this window. Falls back to plain text when the URL is not http(s).
 */
export function externalLink(url: string | null | undefined, text: string, cls?: string): HTMLElement {
  const href = safeHttpUrl(url);
  if (!href) return h('span', { class: cls }, text);
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer', class: cls }, text);
}

/** "one\ntwo\n\n" -> ["one", "two"] (trimmed, blank lines dropped). */
export function linesToList(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

export function listToLines(list: readonly string[] | null | undefined): string {
  return (list ?? []).join('\n');
}

/** A <select> with the given options; `selected` picks the initial value. */
export function select(
  name: string,
  options: ReadonlyArray<{ value: string; label: string }>,
  selected?: string,
  attrs?: Attrs,
): HTMLSelectElement {
  const el = h('select', { name, ...attrs });
  for (const o of options) {
    el.appendChild(h('option', { value: o.value, selected: o.value === selected }, o.label));
  }
  return el;
}

/** A labelled form row: <label><span>Label</span>control<small>hint</small></label>. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h(
    'label',
    { class: 'field' },
    h('span', { class: 'field-label' }, label),
    control,
    hint ? h('small', { class: 'hint' }, hint) : null,
  );
}

/** A checkbox with its label text after it. */
export function checkbox(name: string, label: string, checked: boolean, attrs?: Attrs): HTMLElement {
  return h(
    'label',
    { class: 'check' },
    h('input', { type: 'checkbox', name, checked, ...attrs }),
    h('span', null, label),
  );
}

/** Reads a named control of a form. */
export function control<T extends HTMLElement = HTMLInputElement>(form: HTMLFormElement, name: string): T {
  const el = form.elements.namedItem(name);
  if (!el || el instanceof RadioNodeList) throw new Error(`form control ${name} missing`);
  return el as unknown as T;
}

// ---------------------------------------------------------------------------------------
// Diff HTML

/** Inline style properties of the server's htmlcolor spans that are carried over. */
const DIFF_STYLE_PROPS = ['color', 'background-color', 'text-decoration', 'font-weight'];
const DIFF_TAGS = new Set(['SPAN', 'BR', 'DEL', 'INS', 'S', 'STRONG', 'B', 'EM', 'I', 'U']);
const DIFF_ATTRS = ['role', 'aria-label', 'title'];

/**
 * Turns the server's diff HTML (format=htmlcolor / html) into DOM nodes.
 *
 * The server escapes the page text inside that HTML, so it is the one HTML string the dashboard
 * accepts. As a second line of defence it is parsed in an inert document (DOMParser never runs
 * scripts or loads resources) and rebuilt from a whitelist: a few inline tags, role/aria-label/
 * title attributes and colour styles (copied through the CSSOM, which also keeps it working
 * under a CSP without 'unsafe-inline'). Anything else becomes its text content.
 */
export function sanitizeDiffHtml(html: string): DocumentFragment {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
  const out = document.createDocumentFragment();
  let afterBr = false;

  const walk = (src: Node, dst: Node): void => {
    for (const node of Array.from(src.childNodes)) {
      if (node.nodeType === Node.TEXT_NODE) {
        let text = node.textContent ?? '';
        // The server writes "<br>\r\n" for each line break; the container keeps white space
        // (pre-wrap), so the newline after a <br> would double every line break.
        if (afterBr) text = text.replace(/^\r?\n/, '');
        afterBr = false;
        if (text) dst.appendChild(document.createTextNode(text));
      } else if (node instanceof Element) {
        if (!DIFF_TAGS.has(node.tagName)) {
          // Unknown element: keep only its text (never its markup).
          walk(node, dst);
          continue;
        }
        const el = document.createElement(node.tagName.toLowerCase());
        for (const a of DIFF_ATTRS) {
          const v = node.getAttribute(a);
          if (v !== null) el.setAttribute(a, v);
        }
        if (node instanceof HTMLElement) {
          for (const p of DIFF_STYLE_PROPS) {
            const v = node.style.getPropertyValue(p);
            // Colours and keywords only: no url(), no expressions.
            if (v && /^[#\w\s(),.%-]+$/.test(v) && !/url\s*\(/i.test(v)) el.style.setProperty(p, v);
          }
        }
        dst.appendChild(el);
        afterBr = node.tagName === 'BR';
        walk(node, el);
      }
    }
  };
  walk(doc.body, out);
  return out;
}
