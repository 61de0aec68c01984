/**
 * The only way this app builds DOM: createElement, setAttribute, text nodes. No HTML strings, no
 * innerHTML, no inline style or on* attributes (the CSP would refuse them, and data must never be
 * parsed as markup: addresses and notes can hold anything).
 */

export type AttrValue = string | number | boolean | null | undefined;
export type Listener = (event: Event) => void;
export type Attrs = Record<string, AttrValue | Listener>;
export type Child = Node | string | number | null | undefined | false | readonly Child[];

const SVG_NS = 'http://www.w3.org/2000/svg';

function applyAttrs(el: Element, attrs: Attrs | null | undefined): void {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    const lower = name.toLowerCase();
    if (typeof value === 'function') {
      if (!lower.startsWith('on')) throw new Error(`h: a function for ${name}`);
      el.addEventListener(lower.slice(2), value);
      continue;
    }
    if (lower === 'style' || lower.startsWith('on') || lower === 'srcdoc') {
      throw new Error(`h: refusing attribute ${name}`);
    }
    if (value === null || value === undefined || value === false) continue;
    const text = value === true ? '' : String(value);
    if (
      (lower === 'href' || lower === 'src' || lower === 'action') &&
      !/^(#|\/(?!\/))/.test(text)
    ) {
      throw new Error(`h: only same-origin links (${name})`);
    }
    el.setAttribute(name, text);
  }
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, ...(child as readonly Child[]));
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element: `h('a', { href: '#/queue', class: 'x', onclick: fn }, 'text', child)`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, ...children);
  return el;
}

/** An SVG element, same rules. */
export function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, ...children);
  return el;
}

/** Replace everything inside `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** Text for a value the server may leave empty. */
export function orDash(value: string | null | undefined): string {
  return value === null || value === undefined || value === '' ? '—' : value;
}
