// The history of one execution as a timeline: each activity, timer, sub-orchestration and wait
// for an external event is a bar from when it began to when its outcome was recorded (still
// open: to now). Bars carry their figures in data-* attributes (kind, task id, start, end,
// duration in ms), which the browser test compares with the history.
//
// A wait is not recorded when it begins (only the event's arrival is), so its bar starts at the
// last event recorded before the episode the event arrived in: the moment the orchestration last
// went idle. An execution still running with nothing outstanding shows an open wait from its
// last step.
import { h, duration } from '../dom.js';

export function bars(events, nowMs, running) {
  const out = [];
  const open = new Map(); // "<kind>:<event_id>" -> bar
  let idleSince = events.length ? events[0].timestamp_ms : 0; // last event of the previous episode
  let last = idleSince;
  for (const e of events) {
    if (e.type === 'OrchestratorStarted') idleSince = last;
    else last = e.timestamp_ms;
    const t = e.timestamp_ms;
    const start = (kind, name) => {
      const b = { kind, name: name || '', taskId: e.event_id, start: t, end: null, failed: false };
      out.push(b);
      open.set(`${kind}:${e.event_id}`, b);
    };
    const end = (kind, failed) => {
      const b = open.get(`${kind}:${e.task_id}`);
      if (b) {
        b.end = t;
        b.failed = failed;
        open.delete(`${kind}:${e.task_id}`);
      }
    };
    switch (e.type) {
      case 'TaskScheduled': start('activity', e.name); break;
      case 'TaskCompleted': end('activity', false); break;
      case 'TaskFailed': end('activity', true); break;
      case 'TimerCreated': start('timer', e.fire_at_ms ? `until ${new Date(e.fire_at_ms).toISOString().slice(11, 23)}` : ''); break;
      case 'TimerFired': end('timer', false); break;
      case 'SubOrchestrationInstanceCreated': start('suborchestration', `${e.name} → ${e.instance_id}`); break;
      case 'SubOrchestrationInstanceCompleted': end('suborchestration', false); break;
      case 'SubOrchestrationInstanceFailed': end('suborchestration', true); break;
      case 'EventRaised':
        out.push({ kind: 'wait', name: e.name || '', taskId: -1, start: Math.min(idleSince, t), end: t, failed: false });
        break;
      default: break;
    }
  }
  // An unfinished execution with nothing outstanding waits for something not recorded yet (an
  // event): an open bar from its last recorded step.
  if (running && events.length && open.size === 0) {
    out.push({ kind: 'wait', name: '(idle)', taskId: -1, start: last, end: null, failed: false });
  }
  for (const b of out) {
    b.open = b.end === null;
    if (b.open) b.end = nowMs;
    b.duration = b.end - b.start;
  }
  return out;
}

export function timeline(events, finishedAt) {
  const now = finishedAt || Date.now();
  const list = bars(events, now, !finishedAt);
  if (!events.length) return h('p', { class: 'muted' }, 'no history');
  const t0 = events[0].timestamp_ms;
  const t1 = Math.max(now, ...list.map((b) => b.end), events[events.length - 1].timestamp_ms);
  const span = Math.max(1, t1 - t0);
  const rows = list.map((b) => {
    const bar = h('div', {
      class: `bar ${b.kind}${b.failed ? ' failed' : ''}${b.open ? ' open' : ''}`,
      title: `${b.kind} ${b.name}: ${duration(b.duration)}${b.open ? ' (still open)' : ''}`,
      dataset: { kind: b.kind, taskId: b.taskId, startMs: b.start, endMs: b.end, durationMs: b.duration, open: b.open },
    });
    bar.style.left = `${((b.start - t0) / span) * 100}%`;
    bar.style.width = `${(b.duration / span) * 100}%`;
    return h('div', { class: 'tl-row' },
      h('div', { class: 'tl-label' }, `${b.kind} ${b.name} · ${duration(b.duration)}`),
      h('div', { class: 'tl-track' }, bar));
  });
  return h('div', { class: 'timeline', id: 'timeline' },
    h('div', { class: 'legend' }, ['activity', 'timer', 'suborchestration', 'wait', 'failed'].map((k) => h('span', {}, h('i', { class: `bar ${k}` }), k))),
    rows.length ? rows : h('p', { class: 'muted' }, 'no activities, timers, sub-orchestrations or waits'),
    h('div', { class: 'tl-axis' }, h('span', {}, '0'), h('span', {}, duration(span))));
}
