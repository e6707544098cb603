// The Hookgate dashboard: a small client of the public API, nothing else.
// The key lives in sessionStorage (this tab only) and goes out as a header,
// so there is no cookie to forge across sites. Every value from the API is
// put in the page as text (textContent, attributes), never as markup.

const KEY = 'hookgate.key';
const ROLE = 'hookgate.role';
const main = document.getElementById('main');
const statusLine = document.getElementById('status');

// ---------------------------------------------------------------- helpers

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function say(message) {
  statusLine.textContent = message;
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : '';
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.fields = body?.data?.errors || [];
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json().catch(() => null);
  if (response.status === 401 && sessionStorage.getItem(KEY)) {
    signOut('The key was refused; sign in again.');
    throw new ApiError(401, answer);
  }
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer?.data;
}

function statusCell(status) {
  return el('td', { class: `status-${status}` }, status);
}

/** A form field with its label and a slot for the API's error about it. */
function field(label, name, attrs = {}) {
  const id = `f-${name.replace(/[^a-z0-9]/gi, '-')}`;
  const tag = attrs.options ? 'select' : attrs.textarea ? 'textarea' : 'input';
  const input = el(tag, { id, name, ...attrs, options: undefined, textarea: undefined },
    (attrs.options || []).map(([value, text]) => el('option', { value }, text)));
  const error = el('span', { class: 'error', id: `${id}-error`, 'data-error-for': name });
  input.setAttribute('aria-describedby', error.id);
  return el('label', { for: id, class: attrs.type === 'checkbox' ? 'check' : undefined }, label, input, error);
}

/**
 * The error slot for the API's field name, or for the nearest field that
 * holds it (`webHookUrls[1]` → `webHookUrls`, `config.region` → `config`).
 */
function slotFor(form, name) {
  for (let at = name; ;) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(at)}"]`);
    if (slot) return [slot, at];
    const up = at.replace(/(\[\d+\]|\.[^.[\]]+)$/, '');
    if (up === at || up === '') return [null, null];
    at = up;
  }
}

/** Shows the API's field errors beside their fields; the rest in the status line. */
function showErrors(form, error) {
  for (const slot of form.querySelectorAll('[data-error-for]')) slot.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  const unplaced = [];
  for (const { field: name, problem } of error.fields) {
    const [slot, at] = slotFor(form, name);
    if (slot) {
      slot.textContent = [slot.textContent, `${name} ${problem}`].filter(Boolean).join('; ');
      form.querySelector(`[name="${CSS.escape(at)}"]`)?.setAttribute('aria-invalid', 'true');
    } else unplaced.push(`${name} ${problem}`);
  }
  say(unplaced.length ? unplaced.join('; ') : error.message);
}

/** Fills a form's fields by name (checkboxes by `checked`). */
function fill(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const input = form.elements[name];
    if (!input) continue;
    if (input.type === 'checkbox') input.checked = Boolean(value);
    else input.value = value ?? '';
  }
}

/** A text field's value, or undefined when blank (so the API's default applies). */
function text(form, name) {
  const value = form.elements[name].value.trim();
  return value === '' ? undefined : value;
}

/** A JSON field's value (undefined when blank); text that is not JSON is refused beside it. */
function json(form, name) {
  const value = text(form, name);
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new ApiError(400, { message: `${name} is not JSON`, data: { errors: [{ field: name, problem: `is not JSON (${error.message})` }] } });
  }
}

/** A number field's value, or undefined when blank. */
function number(form, name) {
  const value = text(form, name);
  return value === undefined ? undefined : Number(value);
}

/** A signing secret, shown once, after the form. */
function showSecret(form, value) {
  main.querySelector('.secret')?.remove();
  form.after(el('p', { class: 'secret', role: 'status' }, 'Signing secret, shown once: ', el('code', { class: 'mono' }, value || '')));
}

/** A button that rotates the secret at `path` and shows the new one (named `key` in the answer). */
function rotateButton(path, key, form) {
  const rotate = el('button', { type: 'button', class: 'secondary' }, 'Rotate secret');
  rotate.addEventListener('click', async () => {
    try {
      const rotated = await api('POST', `${path}/secret/rotate`);
      showSecret(form, rotated[key]);
    } catch (error) { say(error.message); }
  });
  return rotate;
}

/** A button that deletes the resource at `path`, then goes to `back`. */
function deleteButton(path, what, back) {
  const remove = el('button', { type: 'button', class: 'secondary', 'aria-label': `Delete ${what}` }, 'Delete');
  remove.addEventListener('click', async () => {
    try {
      await api('DELETE', path);
      if (location.hash === back) await render();
      else location.hash = back;
      say(`Deleted ${what}.`);
    } catch (error) { say(error.message); }
  });
  return remove;
}

/** Fields both editors have: plugin, config, filter, rate limit, ordering, enabled. */
function deliveryFields() {
  return [
    field('Plugin (name; blank for none)', 'plugin.name'),
    field('Plugin config (JSON object of strings)', 'config', { textarea: true, rows: 3 }),
    field('Filter (JSON; blank for every event)', 'filter', { textarea: true, rows: 3 }),
    field('Rate limit (deliveries per second; blank for none)', 'rateLimit', { type: 'number', min: 1 }),
    field('Ordering', 'ordering', { options: [['none', 'none'], ['fifo', 'fifo (one at a time, in order)']] }),
    field('Enabled', 'enabled', { type: 'checkbox' }),
  ];
}

/** The values of `deliveryFields` from `current`. */
function deliveryValues(current) {
  return {
    'plugin.name': current.plugin?.name,
    config: Object.keys(current.config || {}).length ? JSON.stringify(current.config, null, 1) : '',
    filter: current.filter ? JSON.stringify(current.filter, null, 1) : '',
    rateLimit: current.rateLimit,
    ordering: current.ordering || 'none',
    enabled: current.enabled ?? true,
  };
}

/** The document part `deliveryFields` edit; a pinned plugin version stays while the name does. */
function deliveryDocument(form, current) {
  const name = text(form, 'plugin.name');
  return {
    plugin: name ? { name, version: current.plugin?.name === name ? current.plugin.version : undefined } : undefined,
    config: json(form, 'config'),
    filter: json(form, 'filter'),
    rateLimit: number(form, 'rateLimit'),
    ordering: form.elements.ordering.value,
    enabled: form.elements.enabled.checked,
  };
}

/**
 * Saves `document` to `collection` (POST when `id` is null, else PUT),
 * shows the secret a new resource comes with, and stays on its page.
 */
async function save(form, { collection, route, id, document, secretKey, editor, key = 'id' }) {
  try {
    const saved = await api(id ? 'PUT' : 'POST', id ? `${collection}/${encodeURIComponent(id)}` : collection, document);
    history.replaceState(null, '', `#${route}/${encodeURIComponent(saved[key])}`);
    await editor(saved[key]);
    say(id ? 'Saved.' : 'Created.');
    if (!id && secretKey) showSecret(main.querySelector('form'), saved[secretKey]);
  } catch (error) { showErrors(form, error); }
}

/** The current route and its parameters. */
function here() {
  const [path, query] = location.hash.slice(1).split('?');
  return [path, new URLSearchParams(query || '')];
}

/** A list request's `limit` and `start` (this page's, from the address). */
function pageQuery(limit) {
  const start = Math.max(0, Math.floor(Number(here()[1].get('start'))) || 0);
  return `limit=${limit}&start=${start}`;
}

/** Where a list page stands, with links to the pages before and after it. */
function pager(found) {
  const [path, params] = here();
  const link = (start, label) => {
    const next = new URLSearchParams(params);
    if (start > 0) next.set('start', String(start));
    else next.delete('start');
    return el('a', { href: `#${path}?${next}`, rel: label === 'Previous' ? 'prev' : 'next' }, label);
  };
  const shown = found.items.length;
  const total = found.totalCapped ? `at least ${found.total}` : String(found.total);
  const parts = [`${shown ? found.start + 1 : 0}–${found.start + shown} of ${total}`];
  if (found.start > 0) parts.push(link(Math.max(0, found.start - found.limit), 'Previous'));
  if (found.start + shown < found.total) parts.push(link(found.start + found.limit, 'Next'));
  return el('nav', { class: 'pager', 'aria-label': 'Pages' }, parts[0], parts.slice(1).flatMap((p) => [' · ', p]));
}

/** Set while a live page redraws itself: it keeps its scroll, and focus stays where it is. */
let redrawing = false;

function page(title, ...content) {
  document.title = `${title} · Hookgate`;
  const scroll = main.scrollTop;
  main.replaceChildren(el('h1', {}, title), ...content);
  if (redrawing) main.scrollTop = scroll;
  else main.focus();
}

/** How often the pages that follow what is happening redraw themselves. */
const LIVE_EVERY_MS = 5000;
let liveTimer = null;

/**
 * Redraws the page in a few seconds if it is a live one (overview,
 * deliveries, destinations), unless the tab is hidden or someone is using
 * a control on it; then it waits for the next turn.
 */
function keepLive(live) {
  clearTimeout(liveTimer);
  if (!live) return;
  liveTimer = setTimeout(async () => {
    const busy = main.contains(document.activeElement) && document.activeElement !== main;
    if (document.hidden || busy) return keepLive(live);
    redrawing = true;
    try { await render(); } finally { redrawing = false; }
  }, LIVE_EVERY_MS);
}

// ---------------------------------------------------------------- sign in

function signOut(message) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ROLE);
  location.hash = '';
  render();
  if (message) say(message);
}

function signIn() {
  const form = el('form', {},
    field('API key (an organization key, or the admin key)', 'key', { type: 'password', required: true, autocomplete: 'off' }),
    el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = form.elements.key.value.trim();
    sessionStorage.setItem(KEY, key);
    for (const [role, probe] of [['organization', '/v1/stats'], ['admin', '/v1/plugins']]) {
      const response = await fetch(probe, { headers: { authorization: `Bearer ${key}` } });
      if (response.ok) {
        sessionStorage.setItem(ROLE, role);
        location.hash = role === 'admin' ? '#/plugins' : '#/overview';
        render();
        return;
      }
    }
    sessionStorage.removeItem(KEY);
    form.querySelector('[data-error-for="key"]').textContent = 'That key was refused.';
  });
  page('Sign in', el('div', { class: 'sign-in' }, form));
}

// ---------------------------------------------------------------- overview

const STATUSES = [['delivered', '#1b6e3a'], ['pending', '#c27c0e'], ['failed', '#a4161a'], ['dead', '#5c0a0c'], ['dropped', '#7d8794'], ['cancelled', '#b5bcc5']];

/** A legend's colour square (an SVG fill: the CSP allows no inline styles). */
function swatch(color) {
  return svg('svg', { class: 'swatch', viewBox: '0 0 10 10', 'aria-hidden': 'true' }, svg('rect', { width: 10, height: 10, fill: color }));
}

function chart(stats) {
  const width = 960, height = 200, pad = 28;
  const totals = stats.buckets.map((b) => Object.values(b.deliveries).reduce((a, n) => a + n, 0));
  const max = Math.max(1, ...totals, ...stats.buckets.map((b) => b.events));
  const slot = (width - pad) / stats.buckets.length;
  const bars = stats.buckets.flatMap((bucket, i) => {
    let y = height - pad;
    return STATUSES.filter(([s]) => bucket.deliveries[s]).map(([s, color]) => {
      const h = (bucket.deliveries[s] / max) * (height - 2 * pad);
      y -= h;
      return svg('rect', { x: pad + i * slot + 2, y, width: slot - 4, height: h, fill: color },
        svg('title', {}, `${when(bucket.start)}: ${bucket.deliveries[s]} ${s}`));
    });
  });
  const events = stats.buckets.map((b, i) => `${pad + i * slot + slot / 2},${height - pad - (b.events / max) * (height - 2 * pad)}`).join(' ');
  const labels = stats.buckets.filter((_, i) => i % 3 === 0).map((b) => {
    const i = stats.buckets.indexOf(b);
    return svg('text', { x: pad + i * slot + 2, y: height - 8, 'font-size': 11, fill: '#5a6573' },
      new Date(b.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  });
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Deliveries by outcome and events accepted per ${stats.bucketMs / 60000} minutes` },
    svg('text', { x: 2, y: 14, 'font-size': 11, fill: '#5a6573' }, String(max)),
    bars,
    svg('polyline', { points: events, fill: 'none', stroke: '#0b5cad', 'stroke-width': 2 }),
    labels);
}

async function overview(params) {
  const window = params.get('window') === 'day' ? 'day' : 'hour';
  const stats = await api('GET', `/v1/stats?window=${window}`);
  const sum = (status) => stats.buckets.reduce((a, b) => a + (b.deliveries[status] || 0), 0);
  const events = stats.buckets.reduce((a, b) => a + b.events, 0);
  const picker = el('form', { class: 'inline' },
    field('Window', 'window', { options: [['hour', 'Last hour'], ['day', 'Last day']] }));
  picker.elements.window.value = window;
  picker.elements.window.addEventListener('change', () => { location.hash = `#/overview?window=${picker.elements.window.value}`; });
  page('Overview', picker,
    el('div', { class: 'cards' },
      [['Events accepted', events], ['Delivered', sum('delivered')], ['Failed', sum('failed')], ['Dead', sum('dead')], ['Queue depth', stats.queueDepth]]
        .map(([label, n]) => el('div', { class: 'card' }, el('div', { class: 'n' }, n), label))),
    el('h2', {}, 'Deliveries by outcome'),
    el('div', { class: 'legend' }, STATUSES.map(([s, color]) => el('span', {}, swatch(color), s)),
      el('span', {}, swatch('#0b5cad'), 'events')),
    chart(stats),
    el('h2', {}, 'Destinations failing most'),
    stats.failingDestinations.length === 0 ? el('p', {}, 'None in this window.') :
      el('table', {}, el('thead', {}, el('tr', {}, ['Destination', 'Endpoint', 'Failures', 'Last error'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, stats.failingDestinations.map((d) => el('tr', {},
          el('td', { class: 'mono' }, el('a', { href: `#/deliveries?destinationId=${encodeURIComponent(d.destinationId)}` }, d.destinationId)),
          el('td', { class: 'mono' }, d.endpoint), el('td', {}, d.failures), el('td', {}, d.lastError || ''))))));
}

// ---------------------------------------------------------------- deliveries

const FILTERS = ['status', 'eventType', 'destinationId', 'since', 'until', 'start'];
const TEXT_FILTERS = ['status', 'eventType', 'destinationId'];
const TIME_FILTERS = ['since', 'until'];

/** Epoch ms as a `datetime-local` value (local time, to the minute). */
function localInput(ms) {
  if (!ms) return '';
  const d = new Date(Number(ms));
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function deliveries(params) {
  const query = new URLSearchParams();
  for (const name of FILTERS) if (params.get(name)) query.set(name, params.get(name));
  query.set('limit', '50');
  const found = await api('GET', `/v1/deliveries?${query}`);
  const form = el('form', { class: 'inline', 'aria-label': 'Search deliveries' },
    field('Status', 'status', { options: [['', 'any'], ...['pending', 'delivered', 'failed', 'dead', 'dropped', 'cancelled'].map((s) => [s, s])] }),
    field('Event type', 'eventType'),
    field('Destination', 'destinationId'),
    field('Since', 'since', { type: 'datetime-local' }),
    field('Until', 'until', { type: 'datetime-local' }),
    el('button', { type: 'submit' }, 'Search'),
    el('button', { type: 'button', class: 'secondary', id: 'replay-matching' }, 'Replay all matching'));
  for (const name of TEXT_FILTERS) form.elements[name].value = params.get(name) || '';
  for (const name of TIME_FILTERS) form.elements[name].value = localInput(params.get(name));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of TEXT_FILTERS) if (form.elements[name].value) next.set(name, form.elements[name].value);
    for (const name of TIME_FILTERS) if (form.elements[name].value) next.set(name, String(new Date(form.elements[name].value).getTime()));
    location.hash = `#/deliveries?${next}`;
  });
  form.querySelector('#replay-matching').addEventListener('click', async () => {
    const filter = {};
    for (const name of TEXT_FILTERS) if (params.get(name)) filter[name] = params.get(name);
    for (const name of TIME_FILTERS) if (params.get(name)) filter[name] = Number(params.get(name));
    try {
      const answer = await api('POST', '/v1/deliveries/replay', filter);
      say(`Replaying ${answer?.replayed ?? 'the matching'} deliveries.`);
    } catch (error) { showErrors(form, error); }
  });
  const total = found.totalCapped ? `at least ${found.total}` : String(found.total);
  page('Deliveries', form,
    el('p', {}, `${total} deliveries, newest first.`),
    el('table', {}, el('thead', {}, el('tr', {}, ['Delivery', 'Type', 'Endpoint', 'Status', 'Attempts', 'Last error', 'Created'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, found.items.map((d) => el('tr', {},
        el('td', { class: 'mono' }, el('a', { href: `#/deliveries/${encodeURIComponent(d.id)}` }, d.id)),
        el('td', {}, d.eventType), el('td', { class: 'mono' }, d.endpoint), statusCell(d.status),
        el('td', {}, d.attemptCount), el('td', {}, d.lastError || ''), el('td', {}, when(d.created)))))),
    pager(found));
}

async function delivery(id) {
  const d = await api('GET', `/v1/deliveries/${encodeURIComponent(id)}`);
  const replay = el('button', { type: 'button', id: 'replay' }, 'Replay');
  replay.addEventListener('click', async () => {
    try {
      await api('POST', `/v1/deliveries/${encodeURIComponent(id)}/replay`);
      say('Replay queued.');
      await delivery(id);
    } catch (error) { say(error.message); }
  });
  const event = await api('GET', `/v1/events/${encodeURIComponent(d.eventId)}`).catch(() => null);
  const facts = [['Event', d.eventId], ['Type', d.eventType], ['Destination', d.targetId], ['Endpoint', d.endpoint], ['Method', d.method], ['Status', d.status], ['Attempts', d.attemptCount], ['Created', when(d.created)]];
  page(`Delivery ${d.id}`,
    el('table', { class: 'facts' }, el('tbody', {}, facts.map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', { class: 'mono' }, v))))),
    el('p', {}, replay),
    el('div', { class: 'bodies' },
      el('section', {}, el('h2', {}, 'Event payload'), el('pre', { id: 'event-payload' }, event ? pretty(event.payload) : 'The event is no longer stored.')),
      el('section', {}, el('h2', {}, 'Request body sent'),
        d.request ? [el('p', { class: 'mono' }, `${d.request.contentType}${d.request.bodyEncoding === 'base64' ? ' (base64)' : ''}`),
          d.request.headers.length ? requestHeaders(d.request.headers) : null,
          el('pre', { id: 'request-body' }, d.request.bodyEncoding === 'utf8' ? prettyText(d.request.body) : d.request.body)]
          : el('p', {}, 'Not made yet: the first attempt runs the transform.'))),
    el('h2', {}, 'Attempts'),
    (d.attempts || []).length === 0 ? el('p', {}, 'No attempt yet.') :
      el('table', {}, el('thead', {}, el('tr', {}, ['#', 'Started', 'Duration', 'Status', 'Error', 'Request headers', 'Response'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, d.attempts.map((a) => el('tr', {},
          el('td', {}, a.attempt), el('td', {}, when(a.started)), el('td', {}, `${a.durationMs} ms`),
          el('td', {}, a.statusCode ?? ''), el('td', {}, a.error || ''),
          el('td', {}, requestHeaders(a.requestHeaders || [])),
          el('td', {}, el('pre', {}, a.responseExcerpt || '')))))));
}

/** JSON, indented. */
function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** A body indented when it is JSON, else as it is. */
function prettyText(text) {
  try { return pretty(JSON.parse(text)); } catch { return text; }
}

/** The headers an attempt sent (the API has already redacted the auth header). */
function requestHeaders(pairs) {
  if (pairs.length === 0) return 'none sent';
  return el('dl', { class: 'headers' }, pairs.flatMap(([name, value]) => [el('dt', { class: 'mono' }, name), el('dd', { class: 'mono' }, value)]));
}

// ---------------------------------------------------------------- destinations

async function destinations() {
  const found = await api('GET', `/v1/destinations?${pageQuery(50)}`);
  const percent = (rate) => (rate === null || rate === undefined ? '' : `${(rate * 100).toFixed(1)} %`);
  const rows = found.items.map((d) => {
    const toggle = el('button', { type: 'button', class: 'secondary', 'aria-label': `${d.enabled ? 'Disable' : 'Enable'} ${d.endpoint}` }, d.enabled ? 'Disable' : 'Enable');
    toggle.addEventListener('click', async () => {
      const path = d.kind === 'webhook' ? `/v1/webhooks/${encodeURIComponent(d.destinationId)}` : `/v1/integrations/${encodeURIComponent(d.destinationId)}`;
      try {
        const current = await api('GET', path);
        await api('PUT', path, { ...current, enabled: !d.enabled });
        say(`${d.endpoint} ${d.enabled ? 'disabled' : 'enabled'}.`);
        await destinations();
      } catch (error) { say(error.message); }
    });
    return el('tr', {},
      el('td', { class: 'mono' }, el('a', { href: `#/deliveries?destinationId=${encodeURIComponent(d.destinationId)}` }, d.destinationId)),
      el('td', {}, d.name), el('td', { class: 'mono' }, d.endpoint),
      el('td', {}, percent(d.successRate)), el('td', {}, d.p95LatencyMs === null ? '' : `${d.p95LatencyMs} ms`),
      el('td', {}, d.recentDeliveries), el('td', {}, d.lastError || ''),
      el('td', { class: d.enabled ? 'status-delivered' : 'status-failed' }, d.enabled ? 'enabled' : `disabled: ${d.disabledReason || ''}`),
      el('td', {}, toggle));
  });
  page('Destinations',
    el('p', {}, `${found.total} destinations; health from each one's last 200 deliveries.`),
    el('table', {}, el('thead', {}, el('tr', {}, ['Destination', 'Name', 'Endpoint', 'Success', 'p95', 'Recent', 'Last error', 'State', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    pager(found));
}

// ---------------------------------------------------------------- subscriptions

async function subscriptions() {
  const found = await api('GET', `/v1/webhooks?${pageQuery(100)}`);
  const rows = found.items.map((w) => el('tr', {},
    el('td', { class: 'mono' }, el('a', { href: `#/subscriptions/${encodeURIComponent(w.id)}` }, w.id)),
    el('td', {}, w.name || ''), el('td', {}, w.topic),
    el('td', {}, el('ul', {}, w.webHookUrls.map((url) => el('li', { class: 'mono' }, url)))),
    el('td', {}, w.disabledReason ? `disabled: ${w.disabledReason}` : 'enabled')));
  page('Subscriptions',
    el('p', {}, el('a', { href: '#/subscriptions/new', class: 'button' }, 'New subscription')),
    el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'Name', 'Event type', 'URLs', 'State'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    pager(found));
}

/** A subscription's page: its form (new when `id` is null), rotation and deletion. */
async function subscription(id) {
  const current = id ? await api('GET', `/v1/webhooks/${encodeURIComponent(id)}`) : {};
  const form = el('form', { class: 'editor', 'aria-label': 'Subscription' },
    field('Name', 'name'),
    field('Event type', 'topic', { required: true }),
    field('URLs (one per line)', 'webHookUrls', { textarea: true, rows: 3, required: true }),
    field('Method', 'method', { options: ['POST', 'PUT', 'PATCH'].map((m) => [m, m]) }),
    field('Only events of shop (blank for all)', 'shopId'),
    ...deliveryFields(),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, id ? 'Save' : 'Create')));
  // The API checks URLs (scheme, private addresses) and says why.
  form.noValidate = true;
  fill(form, {
    name: current.name, topic: current.topic, webHookUrls: (current.webHookUrls || []).join('\n'),
    method: current.method || 'POST', shopId: current.shopId, ...deliveryValues(current),
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const document = {
        name: text(form, 'name'),
        topic: form.elements.topic.value.trim(),
        webHookUrls: form.elements.webHookUrls.value.split('\n').map((u) => u.trim()).filter(Boolean),
        method: form.elements.method.value,
        shopId: text(form, 'shopId'),
        ...deliveryDocument(form, current),
      };
      await save(form, { collection: '/v1/webhooks', route: '/subscriptions', id, document, secretKey: 'secret', editor: subscription });
    } catch (error) { showErrors(form, error); }
  });
  const path = `/v1/webhooks/${encodeURIComponent(id)}`;
  page(id ? `Subscription ${current.name || id}` : 'New subscription', form,
    id ? el('p', { class: 'actions' }, rotateButton(path, 'secret', form), ' ', deleteButton(path, current.name || id, '#/subscriptions')) : null,
    el('p', {}, el('a', { href: '#/subscriptions' }, 'All subscriptions')));
}

// ---------------------------------------------------------------- integrations

async function integrations() {
  const found = await api('GET', `/v1/integrations?${pageQuery(100)}`);
  const rows = found.items.map((i) => {
    const auth = i.authentication ? `OAuth2 ${i.authentication.client_auth || 'client_secret_basic'} at ${i.authentication.endpoint}` : 'none';
    return el('tr', {}, el('td', { class: 'mono' }, el('a', { href: `#/integrations/${encodeURIComponent(i.id)}` }, i.id)), el('td', {}, i.name),
      el('td', {}, el('ul', {}, i.hooks.map((h) => el('li', {}, `${h.type} → `, el('span', { class: 'mono' }, h.endpoint))))),
      el('td', {}, auth), el('td', {}, i.plugin ? i.plugin.name : ''),
      el('td', {}, i.enabled ? 'enabled' : `disabled: ${i.disabledReason || ''}`));
  });
  page('Integrations',
    el('p', {}, el('a', { href: '#/integrations/new', class: 'button' }, 'New integration')),
    el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'Name', 'Hooks', 'Authentication', 'Plugin', 'State'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    pager(found));
}

const METHODS = ['POST', 'PUT', 'PATCH'].map((m) => [m, m]);

/** The hooks fieldset: a row per hook, add and remove (rebuilt from the rows' values). */
function hooksFieldset(hooks) {
  const set = el('fieldset', { class: 'hooks' }, el('legend', {}, 'Hooks: where each event type goes'));
  const read = () => [...set.querySelectorAll('.hook')].map((row, i) => ({
    type: row.querySelector(`[name="hooks[${i}].type"]`).value,
    endpoint: row.querySelector(`[name="hooks[${i}].endpoint"]`).value,
    method: row.querySelector(`[name="hooks[${i}].method"]`).value,
  }));
  const draw = (list) => {
    set.querySelectorAll('.hook, .add-hook').forEach((n) => n.remove());
    list.forEach((hook, i) => {
      const remove = el('button', { type: 'button', class: 'secondary', 'aria-label': `Remove hook ${i + 1}` }, 'Remove');
      remove.addEventListener('click', () => draw(read().filter((_, j) => j !== i)));
      const row = el('div', { class: 'hook' },
        field(`Hook ${i + 1} event type`, `hooks[${i}].type`, { required: true }),
        field('Endpoint', `hooks[${i}].endpoint`, { required: true, size: 40 }),
        field('Method', `hooks[${i}].method`, { options: METHODS }),
        remove);
      row.querySelector(`[name="hooks[${i}].type"]`).value = hook.type || '';
      row.querySelector(`[name="hooks[${i}].endpoint"]`).value = hook.endpoint || '';
      row.querySelector(`[name="hooks[${i}].method"]`).value = hook.method || 'POST';
      set.append(row);
    });
    const add = el('button', { type: 'button', class: 'secondary add-hook' }, 'Add hook');
    add.addEventListener('click', () => draw([...read(), {}]));
    set.append(add);
  };
  draw(hooks.length ? hooks : [{}]);
  return { set, read, slot: el('span', { class: 'error', 'data-error-for': 'hooks' }) };
}

/** The authentication fieldset: an OAuth2 token fetched before each delivery. */
function authFieldset() {
  return el('fieldset', { class: 'auth' }, el('legend', {}, 'Authentication'),
    field('Fetch an OAuth2 client_credentials token first', 'authentication', { type: 'checkbox' }),
    field('Token endpoint', 'authentication.endpoint', { size: 40 }),
    field('Client id', 'authentication.credentials.client_id'),
    field('Client secret (blank keeps the stored one)', 'authentication.credentials.client_secret', { type: 'password', autocomplete: 'off' }),
    field('Scope', 'authentication.scope'),
    field('Header', 'authentication.header_format'),
    field('Header value (with %ACCESS_TOKEN%)', 'authentication.header_value_format'));
}

/**
 * The authentication document: the stored one with the edited fields on
 * top (options the form does not show, like `audience` or a certificate,
 * are kept), the secret kept when left blank.
 */
function authDocument(form, current) {
  if (!form.elements.authentication.checked) return undefined;
  const stored = current.authentication || {};
  const secret = form.elements['authentication.credentials.client_secret'].value;
  return {
    ...stored,
    grant_type: 'client_credentials',
    endpoint: text(form, 'authentication.endpoint'),
    scope: text(form, 'authentication.scope'),
    header_format: text(form, 'authentication.header_format'),
    header_value_format: text(form, 'authentication.header_value_format'),
    credentials: {
      ...stored.credentials,
      client_id: text(form, 'authentication.credentials.client_id'),
      client_secret: secret || stored.credentials?.client_secret,
    },
  };
}

/** An integration's page: its form (new when `id` is null), rotation and deletion. */
async function integration(id) {
  const current = id ? await api('GET', `/v1/integrations/${encodeURIComponent(id)}`) : {};
  const hooks = hooksFieldset(current.hooks || []);
  const form = el('form', { class: 'editor', 'aria-label': 'Integration' },
    field('Name', 'name', { required: true }),
    field('Description', 'description'),
    hooks.set, hooks.slot,
    authFieldset(),
    ...deliveryFields(),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, id ? 'Save' : 'Create')));
  form.noValidate = true;
  const auth = current.authentication || {};
  fill(form, {
    name: current.name, description: current.description, ...deliveryValues(current),
    authentication: Boolean(current.authentication),
    'authentication.endpoint': auth.endpoint,
    'authentication.credentials.client_id': auth.credentials?.client_id,
    'authentication.scope': auth.scope,
    'authentication.header_format': auth.header_format || 'Authorization',
    'authentication.header_value_format': auth.header_value_format || 'Bearer %ACCESS_TOKEN%',
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const document = {
        name: form.elements.name.value.trim(),
        description: text(form, 'description'),
        hooks: hooks.read(),
        authentication: authDocument(form, current),
        ...deliveryDocument(form, current),
      };
      await save(form, { collection: '/v1/integrations', route: '/integrations', id, document, secretKey: 'signingSecret', editor: integration });
    } catch (error) { showErrors(form, error); }
  });
  const path = `/v1/integrations/${encodeURIComponent(id)}`;
  page(id ? `Integration ${current.name}` : 'New integration', form,
    id ? el('p', { class: 'actions' }, rotateButton(path, 'signingSecret', form), ' ', deleteButton(path, current.name, '#/integrations')) : null,
    el('p', {}, el('a', { href: '#/integrations' }, 'All integrations')));
}

// ---------------------------------------------------------------- event types

async function eventTypes() {
  const found = await api('GET', `/v1/event-types?${pageQuery(100)}`);
  const rows = found.items.map((t) => el('tr', {},
    el('td', { class: 'mono' }, el('a', { href: `#/event-types/${encodeURIComponent(t.name)}` }, t.name)),
    el('td', {}, t.description || ''), el('td', {}, t.schema ? 'JSON Schema' : 'any payload'), el('td', {}, when(t.modified))));
  page('Event types',
    el('p', {}, 'Declared types; a payload of a type with a schema must match it, or the event is refused.'),
    el('p', {}, el('a', { href: '#/event-types/new', class: 'button' }, 'New event type')),
    el('table', {}, el('thead', {}, el('tr', {}, ['Name', 'Description', 'Payload', 'Changed'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    pager(found));
}

/** An event type's page: its form (new when `name` is null) and deletion. */
async function eventType(name) {
  const current = name ? await api('GET', `/v1/event-types/${encodeURIComponent(name)}`) : {};
  const form = el('form', { class: 'editor', 'aria-label': 'Event type' },
    field('Name', 'name', { required: true, readonly: Boolean(name) }),
    field('Description', 'description'),
    field('Payload schema (JSON Schema; blank for any payload)', 'schema', { textarea: true, rows: 10 }),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, name ? 'Save' : 'Create')));
  form.noValidate = true;
  fill(form, { name: current.name, description: current.description, schema: current.schema ? pretty(current.schema) : '' });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const document = { name: form.elements.name.value.trim(), description: text(form, 'description'), schema: json(form, 'schema') };
      await save(form, { collection: '/v1/event-types', route: '/event-types', id: name, document, editor: eventType, key: 'name' });
    } catch (error) { showErrors(form, error); }
  });
  const path = `/v1/event-types/${encodeURIComponent(name)}`;
  page(name ? `Event type ${name}` : 'New event type', form,
    name ? el('p', { class: 'actions' }, deleteButton(path, name, '#/event-types')) : null,
    el('p', {}, el('a', { href: '#/event-types' }, 'All event types')));
}

// ---------------------------------------------------------------- sources

const SCHEMES = [['github', 'GitHub'], ['stripe', 'Stripe'], ['shopify', 'Shopify'],
  ['standard-webhooks', 'Standard Webhooks'], ['hmac-sha256', 'HMAC-SHA256 in a header you name']];

/** Where a provider posts: the API's absolute URL, or this page's origin with its path. */
function ingestAddress(url) {
  return url.startsWith('/') ? `${location.origin}${url}` : url;
}

async function sources() {
  const found = await api('GET', `/v1/sources?${pageQuery(100)}`);
  const form = el('form', { class: 'inline', 'aria-label': 'New source' },
    field('Name', 'name', { required: true }),
    field('Provider', 'verify.scheme', { options: SCHEMES }),
    field("The provider's signing secret", 'verify.secret', { type: 'password', autocomplete: 'off', required: true }),
    field('Signature header (HMAC-SHA256 only)', 'verify.header'),
    el('button', { type: 'submit' }, 'Create'));
  form.noValidate = true;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await api('POST', '/v1/sources', {
        name: form.elements.name.value.trim(),
        verify: { scheme: form.elements['verify.scheme'].value, secret: form.elements['verify.secret'].value, header: text(form, 'verify.header') },
      });
      await sources();
      say(`Created ${created.name}: give the provider ${ingestAddress(created.ingestUrl)}`);
    } catch (error) { showErrors(form, error); }
  });
  const rows = found.items.map((s) => el('tr', {},
    el('td', { class: 'mono' }, s.id), el('td', {}, s.name),
    el('td', {}, s.verify.scheme, s.verify.header ? ` (${s.verify.header})` : ''),
    el('td', { class: 'mono ingest-url' }, ingestAddress(s.ingestUrl)),
    el('td', {}, when(s.created)),
    el('td', {}, deleteButton(`/v1/sources/${encodeURIComponent(s.id)}`, s.name, '#/sources'))));
  page('Sources',
    el('p', {}, 'Webhooks from a provider, verified by its signature, become events routed like any other.'),
    form,
    el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'Name', 'Verified as', 'Ingest URL (give it to the provider)', 'Created', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    pager(found));
}

// ---------------------------------------------------------------- organizations (admin)

/** A new API key, shown once, after `anchor`. */
function showKey(anchor, name, key) {
  main.querySelector('.secret')?.remove();
  anchor.after(el('p', { class: 'secret', role: 'status' }, `API key for ${name}, shown once: `, el('code', { class: 'mono' }, key || '')));
}

async function organizations() {
  const found = await api('GET', `/v1/organizations?${pageQuery(100)}`);
  const form = el('form', { class: 'inline', 'aria-label': 'New organization' },
    field('Name', 'name', { required: true }),
    el('button', { type: 'submit' }, 'Create'));
  form.noValidate = true;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await api('POST', '/v1/organizations', { name: form.elements.name.value.trim() });
      await organizations();
      showKey(main.querySelector('form'), created.name, created.apiKey);
    } catch (error) { showErrors(form, error); }
  });
  const rows = found.items.map((o) => {
    const issue = el('button', { type: 'button', class: 'secondary', 'aria-label': `New API key for ${o.name}` }, 'New API key');
    issue.addEventListener('click', async () => {
      try {
        const key = await api('POST', `/v1/organizations/${encodeURIComponent(o.id)}/keys`);
        showKey(main.querySelector('form'), o.name, key.apiKey);
      } catch (error) { say(error.message); }
    });
    return el('tr', {}, el('td', { class: 'mono' }, o.id), el('td', {}, o.name), el('td', {}, when(o.created)), el('td', {}, issue));
  });
  page('Organizations', form,
    el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'Name', 'Created', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    pager(found));
}

// ---------------------------------------------------------------- plugins (admin)

/**
 * The lines of `before` and `after` as [' ' | '-' | '+', line], by longest
 * common subsequence after trimming the common start and end; past 250,000
 * cells the middle is shown as all removed, then all added.
 */
function lineDiff(before, after) {
  const a = before.split('\n'), b = after.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end += 1;
  const x = a.slice(start, a.length - end), y = b.slice(start, b.length - end);
  const same = (lines) => lines.map((line) => [' ', line]);
  let middle;
  if (x.length * y.length > 250000) {
    middle = [...x.map((line) => ['-', line]), ...y.map((line) => ['+', line])];
  } else {
    // lcs[i][j]: the longest common subsequence of x[i..] and y[j..].
    const lcs = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
    for (let i = x.length - 1; i >= 0; i -= 1) {
      for (let j = y.length - 1; j >= 0; j -= 1) {
        lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    middle = [];
    let i = 0, j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) { middle.push([' ', x[i]]); i += 1; j += 1; }
      else if (i < x.length && (j === y.length || lcs[i + 1][j] >= lcs[i][j + 1])) { middle.push(['-', x[i]]); i += 1; }
      else { middle.push(['+', y[j]]); j += 1; }
    }
  }
  return [...same(a.slice(0, start)), ...middle, ...same(a.slice(a.length - end))];
}

/** The lines a plugin logged in a dry run, as text; nothing when it logged none. */
function logsView(title, logs) {
  if (!logs || logs.length === 0) return null;
  return el('div', { class: 'logs' }, el('h3', {}, title),
    el('pre', {}, logs.map((line) => el('span', { class: `log-${line.level}` }, `${line.level.padEnd(5)} ${line.message}\n`))));
}

/** A diff as text lines marked for the eye (class) and for screen readers (the sign). */
function diffView(before, after) {
  const lines = lineDiff(before, after);
  const kind = { '-': 'del', '+': 'ins', ' ': 'same' };
  return el('pre', { class: 'diff', 'aria-label': 'Changes from the active version to the candidate' },
    lines.map(([op, line]) => el('span', { class: kind[op] }, `${op} ${line}\n`)));
}

async function plugins() {
  const all = await api('GET', '/v1/plugins');
  const rows = all.map((p) => {
    const cells = [el('td', {}, p.name), el('td', { class: 'mono' }, p.version.slice(0, 12)), el('td', {}, p.size),
      el('td', {}, `${p.limits.memoryMiB} MiB, ${p.limits.deadlineMs} ms, reuse ${p.limits.reuse}`), el('td', {}, p.active ? 'active' : '')];
    const activate = el('button', { type: 'button', class: 'secondary', 'aria-label': `Activate ${p.name} ${p.version.slice(0, 12)}` }, 'Activate');
    activate.disabled = p.active;
    activate.addEventListener('click', async () => {
      await api('POST', `/v1/plugins/${encodeURIComponent(p.name)}/activate`, { version: p.version });
      say(`${p.name} ${p.version.slice(0, 12)} is active.`);
      await plugins();
    });
    return el('tr', {}, cells, el('td', {}, activate));
  });
  const candidates = all.filter((p) => !p.active);
  const dry = el('form', { class: 'inline', 'aria-label': 'Dry run' },
    field('Candidate version', 'candidate', { options: candidates.map((p) => [`${p.name} ${p.version}`, `${p.name} ${p.version.slice(0, 12)}`]) }),
    el('button', { type: 'submit' }, 'Dry run'));
  const results = el('div', { 'aria-live': 'polite' });
  dry.addEventListener('submit', async (event) => {
    event.preventDefault();
    const [name, version] = dry.elements.candidate.value.split(' ');
    try {
      const run = await api('POST', `/v1/plugins/${encodeURIComponent(name)}/dry-run`, { version, limit: 50 });
      const text = (side) => (side?.error !== undefined ? `error: ${side.error}` : JSON.stringify(side?.outcome ?? side, null, 2));
      results.replaceChildren(
        el('p', {}, `${run.same} same, ${run.changed} changed, ${run.candidateFailed} failed with the candidate.`),
        el('table', {}, el('thead', {}, el('tr', {}, ['Event', 'Same', 'What the candidate changes'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, run.events.map((e) => el('tr', {},
            el('td', { class: 'mono' }, e.eventId), el('td', {}, e.same ? 'yes' : 'no'),
            el('td', {}, e.same ? el('pre', {}, text(e.active)) : diffView(text(e.active), text(e.candidate)),
              logsView('The active version logged', e.active?.logs), logsView('The candidate logged', e.candidate?.logs)))))));
    } catch (error) { say(error.message); }
  });
  page('Plugins',
    el('table', {}, el('thead', {}, el('tr', {}, ['Plugin', 'Version', 'Bytes', 'Limits', 'State', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    el('h2', {}, 'Dry run a stored version'),
    candidates.length === 0 ? el('p', {}, 'Every stored version is active; upload one with ?activate=false to try it first.') : dry,
    results);
}

// ---------------------------------------------------------------- routing

async function render() {
  clearTimeout(liveTimer);
  if (!redrawing) say('');
  const key = sessionStorage.getItem(KEY);
  const role = sessionStorage.getItem(ROLE);
  const nav = document.getElementById('nav');
  nav.hidden = !key;
  for (const link of nav.querySelectorAll('[data-org]')) link.hidden = role !== 'organization';
  for (const link of nav.querySelectorAll('[data-admin]')) link.hidden = role !== 'admin';
  if (!key) return signIn();
  const [path, query] = location.hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  for (const link of nav.querySelectorAll('a')) {
    if (path.startsWith(link.getAttribute('href').slice(1))) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  try {
    if (path.startsWith('/deliveries/')) await delivery(decodeURIComponent(path.slice('/deliveries/'.length)));
    else if (path === '/deliveries') await deliveries(params);
    else if (path === '/subscriptions/new') await subscription(null);
    else if (path.startsWith('/subscriptions/')) await subscription(decodeURIComponent(path.slice('/subscriptions/'.length)));
    else if (path === '/subscriptions') await subscriptions();
    else if (path === '/integrations/new') await integration(null);
    else if (path.startsWith('/integrations/')) await integration(decodeURIComponent(path.slice('/integrations/'.length)));
    else if (path === '/destinations') await destinations();
    else if (path === '/sources') await sources();
    else if (path === '/event-types') await eventTypes();
    else if (path === '/event-types/new') await eventType(null);
    else if (path.startsWith('/event-types/')) await eventType(decodeURIComponent(path.slice('/event-types/'.length)));
    else if (path === '/integrations') await integrations();
    else if (path === '/plugins') await plugins();
    else if (path === '/organizations') await organizations();
    else if (role === 'admin') await plugins();
    else await overview(params);
  } catch (error) {
    if (error.status !== 401) say(error.message);
  }
  keepLive(['/overview', '/deliveries', '/destinations'].includes(path) || (path === '' && role !== 'admin'));
}

document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', render);
render();
