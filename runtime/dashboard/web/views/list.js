// Instance list: filters (status, name, ID prefix, created range), sorting and paging, all kept
// in the URL's hash so a filtered view is a link. Rows change status live; a change to an
// instance not shown reloads the page of results (debounced).
import { api } from '../api.js';
import { h, badge, time, errorBox, debounce } from '../dom.js';

const STATUSES = ['PENDING', 'RUNNING', 'SUSPENDED', 'COMPLETED', 'FAILED', 'TERMINATED', 'CANCELED', 'CONTINUED_AS_NEW'];
const COLUMNS = [['id', 'instance'], ['name', 'name'], ['status', 'status'], ['created', 'created'], ['updated', 'updated']];

const toLocal = (ms) => (ms ? new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : '');
const fromLocal = (v) => (v ? String(new Date(v).getTime()) : '');

function form(params) {
  const checked = new Set((params.get('status') || '').split(',').filter(Boolean));
  const f = h('form', { class: 'filters', id: 'filters' },
    h('label', {}, 'status', h('select', { name: 'status', id: 'f-status', multiple: true, size: 4 },
      STATUSES.map((s) => h('option', { value: s, selected: checked.has(s) }, s)))),
    h('label', {}, 'orchestration name', h('input', { name: 'name', id: 'f-name', value: params.get('name') || '' })),
    h('label', {}, 'instance ID prefix', h('input', { name: 'prefix', id: 'f-prefix', value: params.get('prefix') || '' })),
    h('label', {}, 'created from', h('input', { type: 'datetime-local', name: 'created_from', id: 'f-from', value: toLocal(+params.get('created_from')) })),
    h('label', {}, 'created before', h('input', { type: 'datetime-local', name: 'created_to', id: 'f-to', value: toLocal(+params.get('created_to')) })),
    h('label', {}, 'per page', h('select', { name: 'limit', id: 'f-limit' },
      ['20', '50', '100', '200'].map((n) => h('option', { value: n, selected: (params.get('limit') || '50') === n }, n)))),
    h('button', { type: 'submit', id: 'f-apply' }, 'Apply'),
    h('button', { type: 'button', id: 'f-clear', onclick: () => { location.hash = '#/instances'; } }, 'Clear'));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    const sts = [...f.querySelector('#f-status').selectedOptions].map((o) => o.value);
    if (sts.length) p.set('status', sts.join(','));
    for (const [k, id] of [['name', '#f-name'], ['prefix', '#f-prefix']]) {
      const v = f.querySelector(id).value.trim();
      if (v) p.set(k, v);
    }
    const from = fromLocal(f.querySelector('#f-from').value), to = fromLocal(f.querySelector('#f-to').value);
    if (from) p.set('created_from', from);
    if (to) p.set('created_to', to);
    p.set('limit', f.querySelector('#f-limit').value);
    if (params.get('sort')) p.set('sort', params.get('sort'));
    location.hash = `#/instances?${p}`;
  });
  return f;
}

function go(params, changes) {
  const p = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) p.set(k, v);
  location.hash = `#/instances?${p}`;
}

function table(res, params) {
  const sort = params.get('sort') || '-created';
  const head = h('tr', {}, COLUMNS.map(([key, label]) => {
    const active = sort.replace('-', '') === key;
    const next = active && !sort.startsWith('-') ? `-${key}` : key;
    return h('th', { class: 'sortable', dataset: { sort: key }, onclick: () => go(params, { sort: next, offset: '0' }) },
      label, active ? (sort.startsWith('-') ? ' ▼' : ' ▲') : '');
  }));
  const rows = res.instances.map((i) => h('tr', { dataset: { id: i.instance_id } },
    h('td', {}, h('a', { href: `#/instances/${encodeURIComponent(i.instance_id)}` }, i.instance_id)),
    h('td', {}, i.name), h('td', { class: 'status' }, badge(i.runtime_status)),
    h('td', {}, time(i.created_at_ms)), h('td', { class: 'updated' }, time(i.last_updated_at_ms))));
  return h('table', { id: 'instances' }, head, rows);
}

export function list(view, params, onError) {
  const out = h('div', { id: 'list-result' }, h('p', { class: 'muted' }, 'loading…'));
  view.append(h('h2', {}, 'Instances'), form(params), out);
  let alive = true;
  const load = async () => {
    const q = new URLSearchParams(params);
    try {
      const res = await api(`/api/instances?${q}`);
      if (!alive) return;
      const offset = res.offset, limit = res.limit;
      out.replaceChildren(table(res, params),
        h('div', { class: 'pager' },
          h('button', { id: 'prev', disabled: offset === 0, onclick: () => go(params, { offset: String(Math.max(0, offset - limit)) }) }, '← previous'),
          h('span', { id: 'page-info' }, res.total ? `${offset + 1}–${Math.min(offset + limit, res.total)} of ${res.total}${res.truncated ? '+' : ''}` : 'no instances match'),
          h('button', { id: 'next', disabled: offset + limit >= res.total, onclick: () => go(params, { offset: String(offset + limit) }) }, 'next →')));
    } catch (e) {
      if (alive && !onError(e)) out.replaceChildren(errorBox(e));
    }
  };
  const reload = debounce(load, 700);
  const onStatus = (ev) => {
    const row = out.querySelector(`tr[data-id="${CSS.escape(ev.detail.instance_id)}"]`);
    if (row && ev.detail.runtime_status) {
      row.querySelector('.status').replaceChildren(badge(ev.detail.runtime_status));
      row.querySelector('.updated').textContent = time(ev.detail.last_updated_at_ms);
    }
    reload(); // the set of matches may have changed too
  };
  window.addEventListener('dt-status', onStatus);
  window.addEventListener('dt-resync', reload);
  load();
  return () => {
    alive = false;
    window.removeEventListener('dt-status', onStatus);
    window.removeEventListener('dt-resync', reload);
  };
}
