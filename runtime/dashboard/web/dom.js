// Small DOM helpers: elements built from data, never from HTML strings, so payloads and names
// can hold anything without being interpreted as markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const badge = (s) => h('span', { class: `badge s-${s}`, dataset: { status: s } }, s);

export function time(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '-';
}

export function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function errorBox(e) {
  return h('div', { class: 'error', role: 'alert' }, `${e.code || 'error'}: ${e.message}`);
}

// Payloads are JSON text by convention: shown pretty when they parse, verbatim otherwise.
export function payload(text) {
  if (text === null || text === undefined) return h('span', { class: 'muted' }, 'none');
  try {
    return h('pre', {}, JSON.stringify(JSON.parse(text), null, 2));
  } catch {
    return h('pre', {}, text);
  }
}

export function debounce(fn, ms) {
  let t = null;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}
