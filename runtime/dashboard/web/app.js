// The dashboard page: a hash router (deep links: #/, #/instances?status=..., #/instances/<id>)
// and the live feed. Server-sent events from /api/events become 'dt-status' / 'dt-resync'
// events on window, which the current view uses to update itself without a reload.
import { api, token, setToken, ApiError } from './api.js';
import { h } from './dom.js';
import { overview } from './views/overview.js';
import { list } from './views/list.js';
import { detail } from './views/detail.js';

const view = document.getElementById('view');
let current = null; // the view's cleanup function

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  if (current) current();
  current = null;
  view.replaceChildren();
  document.querySelectorAll('header nav a').forEach((a) => a.classList.remove('active'));
  let ctl;
  if (path.startsWith('/instances/')) {
    ctl = detail(view, decodeURIComponent(path.slice('/instances/'.length)), onError);
  } else if (path === '/instances') {
    document.getElementById('nav-instances').classList.add('active');
    ctl = list(view, params, onError);
  } else {
    document.getElementById('nav-overview').classList.add('active');
    ctl = overview(view, onError);
  }
  current = ctl;
}

// A 401 asks for the token once; other errors are shown by the views themselves.
function onError(e) {
  if (e instanceof ApiError && e.status === 401 && !document.getElementById('token-form')) {
    const input = h('input', { type: 'password', id: 'token-input', placeholder: 'bearer token' });
    const form = h('form', { id: 'token-form', class: 'card' }, h('p', {}, 'This dashboard requires a token.'), input,
      h('button', { type: 'submit' }, 'Use token'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      setToken(input.value);
      connectLive();
      route();
    });
    view.replaceChildren(form);
    return true;
  }
  return false;
}

let source = null;
function connectLive() {
  if (source) source.close();
  const t = token();
  source = new EventSource(`/api/events${t ? `?access_token=${encodeURIComponent(t)}` : ''}`);
  const badge = document.getElementById('live');
  source.addEventListener('hello', () => { badge.className = 'live on'; });
  source.addEventListener('error', () => { badge.className = 'live off'; });
  source.addEventListener('status', (ev) => {
    window.dispatchEvent(new CustomEvent('dt-status', { detail: JSON.parse(ev.data) }));
  });
  source.addEventListener('resync', () => window.dispatchEvent(new CustomEvent('dt-resync')));
}

window.addEventListener('hashchange', route);
api('/api/hub').then((hub) => {
  document.getElementById('hub').textContent = `hub ${hub.hub} · ${hub.partitions} partitions`;
}).catch(() => {});
connectLive();
route();
