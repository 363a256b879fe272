// One instance: status, input, output, custom status, failure chain, tags, parent and children,
// the history as a timeline and as raw events, and the actions. A status change of this
// instance (live feed) reloads it; the status badge changes without a page reload.
import { api, instancePath } from '../api.js';
import { h, badge, time, errorBox, payload, debounce } from '../dom.js';
import { timeline } from './timeline.js';

const FINISHED = new Set(['COMPLETED', 'FAILED', 'TERMINATED', 'CANCELED']);
const link = (id) => h('a', { href: `#/instances/${encodeURIComponent(id)}` }, id);

function failureChain(f) {
  const items = [];
  for (let depth = 0; f && depth < 32; f = f.inner, depth++) {
    items.push(h('li', {}, h('b', {}, f.type), `: ${f.message}`, f.non_retriable ? ' (non-retriable)' : '',
      f.stack_trace ? h('pre', {}, f.stack_trace) : ''));
  }
  return h('ol', { id: 'failure' }, items);
}

function actions(id, inst, reload, show) {
  const run = async (action, body) => {
    try {
      await api(`${instancePath(id)}/${action}`, { method: 'POST', body });
      show(null, `${action}: accepted`);
      if (action === 'purge') location.hash = '#/instances';
    } catch (e) {
      show(e);
    }
  };
  const reason = h('input', { id: 'a-reason', placeholder: 'reason (optional)' });
  const recursive = h('input', { type: 'checkbox', id: 'a-recursive', checked: true });
  const evName = h('input', { id: 'a-event', placeholder: 'event name' });
  const evData = h('input', { id: 'a-data', placeholder: 'data (JSON)' });
  const finished = FINISHED.has(inst.runtime_status);
  const rsn = () => (reason.value ? { reason: reason.value } : {});
  return h('section', { class: 'card actions', id: 'actions' },
    reason,
    h('button', { id: 'a-suspend', disabled: finished, onclick: () => run('suspend', rsn()) }, 'Suspend'),
    h('button', { id: 'a-resume', disabled: finished, onclick: () => run('resume', rsn()) }, 'Resume'),
    h('label', {}, recursive, ' recursive'),
    h('button', { id: 'a-terminate', class: 'danger', disabled: finished,
      onclick: () => run('terminate', { ...rsn(), recursive: recursive.checked }) }, 'Terminate'),
    evName, evData,
    h('button', { id: 'a-raise', disabled: finished, onclick: () => {
      let data;
      try {
        data = evData.value.trim() ? JSON.parse(evData.value) : undefined;
      } catch {
        show({ code: 'invalid', message: 'the event data must be JSON' });
        return;
      }
      run('raise', { name: evName.value, ...(data === undefined ? {} : { data }) });
    } }, 'Raise event'),
    h('button', { id: 'a-restart', disabled: !finished,
      onclick: () => run('restart', {}) }, 'Restart'),
    h('button', { id: 'a-purge', class: 'danger', disabled: !finished,
      onclick: () => {
        if (confirm(`Purge ${id}${recursive.checked ? ' and its sub-orchestrations' : ''}? Their history is deleted.`)) {
          run('purge', { recursive: recursive.checked });
        }
      } }, 'Purge'));
}

function render(root, id, inst, hist, histErr, reload, show) {
  const events = hist ? hist.events : [];
  const children = events.filter((e) => e.type === 'SubOrchestrationInstanceCreated' && e.instance_id).map((e) => e.instance_id);
  const tags = Object.entries(inst.tags || {});
  const finishedAt = FINISHED.has(inst.runtime_status) ? inst.last_updated_at_ms : 0;
  root.replaceChildren(
    h('h2', {}, 'Instance ', h('code', { id: 'instance-id' }, id), ' ', h('span', { id: 'status' }, badge(inst.runtime_status))),
    h('div', { id: 'action-result' }),
    actions(id, inst, reload, show),
    h('section', { class: 'card' }, h('dl', { class: 'kv' },
      h('dt', {}, 'name'), h('dd', { id: 'name' }, inst.name),
      h('dt', {}, 'version'), h('dd', {}, inst.version || '-'),
      h('dt', {}, 'execution'), h('dd', {}, inst.execution_id),
      h('dt', {}, 'created'), h('dd', {}, time(inst.created_at_ms)),
      h('dt', {}, 'last updated'), h('dd', { id: 'updated' }, time(inst.last_updated_at_ms)),
      h('dt', {}, 'parent'), h('dd', { id: 'parent' }, inst.parent_instance_id ? link(inst.parent_instance_id) : '-'),
      h('dt', {}, 'children'), h('dd', { id: 'children' }, children.length ? children.flatMap((c, i) => (i ? [', ', link(c)] : [link(c)])) : '-'),
      h('dt', {}, 'tags'), h('dd', { id: 'tags' }, tags.length ? tags.map(([k, v]) => `${k}=${v}`).join(', ') : '-'))),
    h('section', { class: 'card' }, h('h2', {}, 'Input'), h('div', { id: 'input' }, payload(inst.input)),
      h('h2', {}, 'Output'), h('div', { id: 'output' }, payload(inst.output)),
      h('h2', {}, 'Custom status'), h('div', { id: 'custom-status' }, payload(inst.custom_status)),
      inst.failure ? [h('h2', {}, 'Failure'), failureChain(inst.failure)] : ''),
    h('section', { class: 'card' }, h('h2', {}, 'Timeline'), histErr ? errorBox(histErr) : timeline(events, finishedAt)),
    h('section', { class: 'card' }, h('h2', {}, 'History events'),
      hist ? h('table', { id: 'events' },
        h('tr', {}, ['#', 'time', 'type', 'id', 'task', 'name', 'payload'].map((t) => h('th', {}, t))),
        events.map((e, i) => h('tr', {}, h('td', {}, i), h('td', {}, time(e.timestamp_ms)), h('td', {}, e.type),
          h('td', {}, e.event_id), h('td', {}, e.task_id ?? ''), h('td', {}, e.name || e.instance_id || ''),
          h('td', {}, e.failure ? `${e.failure.type}: ${e.failure.message}` : (e.payload ?? ''))))) : '',
      hist ? h('details', {}, h('summary', {}, 'raw JSON'), h('pre', { id: 'raw-events' }, JSON.stringify(events, null, 2))) : ''));
}

export function detail(view, id, onError) {
  const root = h('div', { id: 'detail' }, h('p', { class: 'muted' }, 'loading…'));
  view.append(root);
  let alive = true;
  let message = null;
  const show = (e, text) => {
    message = e ? errorBox(e) : h('div', { class: 'card', id: 'action-ok' }, text);
    const slot = root.querySelector('#action-result');
    if (slot) slot.replaceChildren(message);
  };
  const load = async () => {
    try {
      const inst = await api(instancePath(id));
      let hist = null, histErr = null;
      try {
        hist = await api(`${instancePath(id)}/history`);
      } catch (e) {
        histErr = e;
      }
      if (!alive) return;
      render(root, id, inst, hist, histErr, load, show);
      if (message) root.querySelector('#action-result').replaceChildren(message);
    } catch (e) {
      if (alive && !onError(e)) root.replaceChildren(errorBox(e));
    }
  };
  const reload = debounce(load, 300);
  const onStatus = (ev) => {
    if (ev.detail.instance_id !== id) return;
    const slot = root.querySelector('#status');
    if (slot && ev.detail.runtime_status) slot.replaceChildren(badge(ev.detail.runtime_status));
    reload();
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
