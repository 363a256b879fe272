// The dashboard's HTTP API (docs/operations.md, "Dashboard"): fetch with the bearer token the
// user gave (kept for the browser tab only), errors as ApiError with the server's code.
const TOKEN_KEY = 'dt-dashboard-token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = {};
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json().catch(() => ({ error: { code: 'bad_reply', message: `${r.status} ${r.statusText}` } }));
  if (!r.ok) throw new ApiError(r.status, j.error?.code, j.error?.message || r.statusText);
  return j;
}

export const instancePath = (id) => `/api/instances/${encodeURIComponent(id)}`;
