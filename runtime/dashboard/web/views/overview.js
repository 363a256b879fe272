// Overview: instances by status and by name, throughput now, backlog and oldest age per queue,
// workers with the partitions they hold. Refreshed every 5 s and after status changes.
import { api } from '../api.js';
import { h, badge, duration, time, errorBox, debounce } from '../dom.js';

const STATUSES = ['PENDING', 'RUNNING', 'SUSPENDED', 'COMPLETED', 'FAILED', 'TERMINATED', 'CANCELED', 'CONTINUED_AS_NEW'];

function render(root, o) {
  const by = o.instances.by_status || {};
  const stats = h('div', { class: 'stats', id: 'status-counts' },
    STATUSES.map((s) => h('a', { class: 'stat', href: `#/instances?status=${s}`, dataset: { status: s } },
      h('b', {}, by[s] || 0), badge(s))));
  const tp = o.throughput;
  const names = Object.entries(o.instances.by_name || {}).sort((a, b) => b[1].total - a[1].total);
  const byName = h('table', { id: 'by-name' },
    h('tr', {}, h('th', {}, 'orchestration'), h('th', {}, 'total'), STATUSES.map((s) => h('th', {}, s))),
    names.map(([n, c]) => h('tr', {}, h('td', {}, h('a', { href: `#/instances?name=${encodeURIComponent(n)}` }, n)),
      h('td', {}, c.total), STATUSES.map((s) => h('td', {}, c[s] || '')))));
  const backlog = h('table', { id: 'backlog' },
    h('tr', {}, ['queue', 'consumer', 'subject', 'waiting', 'in progress', 'redelivered', 'oldest unacked'].map((t) => h('th', {}, t))),
    o.backlog.map((b) => h('tr', { dataset: { consumer: b.consumer } }, h('td', {}, b.kind), h('td', {}, b.consumer),
      h('td', {}, b.filter || '(all)'), h('td', {}, b.num_pending), h('td', {}, b.num_ack_pending),
      h('td', {}, b.num_redelivered), h('td', {}, b.oldest_ms ? duration(b.oldest_age_ms) : '-'))));
  const w = o.workers;
  const workers = w.error ? errorBox({ message: w.error }) : h('table', { id: 'workers' },
    h('tr', {}, ['worker', 'started', 'last heartbeat', 'partitions'].map((t) => h('th', {}, t))),
    w.list.map((x) => h('tr', {}, h('td', {}, x.worker_id), h('td', {}, time(x.started_at_ms)),
      h('td', {}, time(x.at_ms)), h('td', { class: 'partitions' }, (x.partitions || []).sort((a, b) => a - b).join(', ') || '-'))));
  root.replaceChildren(
    h('h2', {}, 'Instances', o.instances.truncated ? h('span', { class: 'muted' }, ` (first ${o.instances.scanned})`) : ''),
    o.instances.error ? errorBox({ code: 'counts', message: o.instances.error }) : '',
    stats,
    h('h2', {}, 'Throughput now'),
    h('div', { class: 'stats', id: 'throughput' },
      h('div', { class: 'stat' }, h('b', {}, tp.finished_per_s.toFixed(1)), h('span', {}, `finished / s (last ${tp.window_s} s)`)),
      h('div', { class: 'stat' }, h('b', {}, tp.changes_per_s.toFixed(1)), h('span', {}, 'status changes / s'))),
    h('h2', {}, 'By orchestration'), byName,
    h('h2', {}, 'Backlog per queue'), backlog,
    h('h2', {}, 'Workers'), workers,
    w.unowned && w.unowned.length ? h('p', { class: 'error' }, `partitions without a worker: ${w.unowned.join(', ')}`) : '',
    h('p', { class: 'muted' }, `as of ${time(o.now_ms)}`));
}

export function overview(view, onError) {
  const root = h('div', { id: 'overview' }, h('p', { class: 'muted' }, 'loading…'));
  view.append(root);
  let alive = true;
  const load = async () => {
    try {
      const o = await api('/api/overview');
      if (alive) render(root, o);
    } catch (e) {
      if (alive && !onError(e)) root.replaceChildren(errorBox(e));
    }
  };
  const soon = debounce(load, 1000);
  const timer = setInterval(load, 5000);
  window.addEventListener('dt-status', soon);
  window.addEventListener('dt-resync', soon);
  load();
  return () => {
    alive = false;
    clearInterval(timer);
    window.removeEventListener('dt-status', soon);
    window.removeEventListener('dt-resync', soon);
  };
}
