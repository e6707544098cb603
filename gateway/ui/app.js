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
  const input = el(attrs.options ? 'select' : 'input', { id, name, ...attrs, options: undefined },
    (attrs.options || []).map(([value, text]) => el('option', { value }, text)));
  const error = el('span', { class: 'error', id: `${id}-error`, 'data-error-for': name });
  input.setAttribute('aria-describedby', error.id);
  return el('label', { for: id }, label, input, error);
}

/** Shows the API's field errors beside their fields; the rest in the status line. */
function showErrors(form, error) {
  for (const slot of form.querySelectorAll('[data-error-for]')) slot.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  const unplaced = [];
  for (const { field: name, problem } of error.fields) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = `${name} ${problem}`;
      form.querySelector(`[name="${CSS.escape(name)}"]`)?.setAttribute('aria-invalid', 'true');
    } else unplaced.push(`${name} ${problem}`);
  }
  say(unplaced.length ? unplaced.join('; ') : error.message);
}

function page(title, ...content) {
  document.title = `${title} · Hookgate`;
  main.replaceChildren(el('h1', {}, title), ...content);
  main.focus();
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

const FILTERS = ['status', 'eventType', 'destinationId', 'since', 'until'];

async function deliveries(params) {
  const query = new URLSearchParams();
  for (const name of FILTERS) if (params.get(name)) query.set(name, params.get(name));
  query.set('limit', '50');
  const found = await api('GET', `/v1/deliveries?${query}`);
  const form = el('form', { class: 'inline', 'aria-label': 'Search deliveries' },
    field('Status', 'status', { options: [['', 'any'], ...['pending', 'delivered', 'failed', 'dead', 'dropped', 'cancelled'].map((s) => [s, s])] }),
    field('Event type', 'eventType'),
    field('Destination', 'destinationId'),
    el('button', { type: 'submit' }, 'Search'),
    el('button', { type: 'button', class: 'secondary', id: 'replay-matching' }, 'Replay all matching'));
  for (const name of ['status', 'eventType', 'destinationId']) form.elements[name].value = params.get(name) || '';
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ['status', 'eventType', 'destinationId']) if (form.elements[name].value) next.set(name, form.elements[name].value);
    location.hash = `#/deliveries?${next}`;
  });
  form.querySelector('#replay-matching').addEventListener('click', async () => {
    const filter = {};
    for (const name of ['status', 'eventType', 'destinationId']) if (params.get(name)) filter[name] = params.get(name);
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
        el('td', {}, d.attemptCount), el('td', {}, d.lastError || ''), el('td', {}, when(d.created)))))));
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
  const facts = [['Event', d.eventId], ['Type', d.eventType], ['Destination', d.targetId], ['Endpoint', d.endpoint], ['Method', d.method], ['Status', d.status], ['Attempts', d.attemptCount], ['Created', when(d.created)]];
  page(`Delivery ${d.id}`,
    el('table', { class: 'facts' }, el('tbody', {}, facts.map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', { class: 'mono' }, v))))),
    el('p', {}, replay),
    el('h2', {}, 'Attempts'),
    (d.attempts || []).length === 0 ? el('p', {}, 'No attempt yet.') :
      el('table', {}, el('thead', {}, el('tr', {}, ['#', 'Started', 'Duration', 'Status', 'Error', 'Request headers', 'Response'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, d.attempts.map((a) => el('tr', {},
          el('td', {}, a.attempt), el('td', {}, when(a.started)), el('td', {}, `${a.durationMs} ms`),
          el('td', {}, a.statusCode ?? ''), el('td', {}, a.error || ''),
          el('td', {}, requestHeaders(a.requestHeaders || [])),
          el('td', {}, el('pre', {}, a.responseExcerpt || '')))))));
}

/** The headers an attempt sent (the API has already redacted the auth header). */
function requestHeaders(pairs) {
  if (pairs.length === 0) return 'none sent';
  return el('dl', { class: 'headers' }, pairs.map(([name, value]) => [el('dt', { class: 'mono' }, name), el('dd', { class: 'mono' }, value)]));
}

// ---------------------------------------------------------------- destinations

async function destinations() {
  const found = await api('GET', '/v1/destinations?limit=50');
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
      el('tbody', {}, rows)));
}

// ---------------------------------------------------------------- subscriptions

async function subscriptions() {
  const found = await api('GET', '/v1/webhooks?limit=100');
  const form = el('form', { class: 'inline', 'aria-label': 'New subscription' },
    field('Event type', 'topic', { required: true }),
    field('URL', 'url', { required: true, type: 'url', size: 40 }),
    el('button', { type: 'submit' }, 'Create'));
  // The API checks the URL (scheme, private addresses): let it say why.
  form.noValidate = true;
  const secret = el('div', { 'aria-live': 'polite' });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await api('POST', '/v1/webhooks', { topic: form.elements.topic.value, url: form.elements.url.value });
      await subscriptions();
      showSecret(created.secret);
    } catch (error) { showErrors(form, error); }
  });
  const rows = found.items.map((w) => {
    const rotate = el('button', { type: 'button', class: 'secondary' }, 'Rotate secret');
    rotate.addEventListener('click', async () => {
      const rotated = await api('POST', `/v1/webhooks/${encodeURIComponent(w.id)}/secret/rotate`);
      showSecret(rotated.secret);
    });
    const remove = el('button', { type: 'button', class: 'secondary' }, 'Delete');
    remove.addEventListener('click', async () => {
      await api('DELETE', `/v1/webhooks/${encodeURIComponent(w.id)}`);
      await subscriptions();
      say(`Deleted ${w.id}.`);
    });
    return el('tr', {}, el('td', { class: 'mono' }, w.id), el('td', {}, w.topic), el('td', { class: 'mono' }, w.url),
      el('td', {}, w.disabledReason ? `disabled: ${w.disabledReason}` : 'enabled'), el('td', {}, rotate, ' ', remove));
  });
  page('Subscriptions', form, secret,
    el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'Event type', 'URL', 'State', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)));
  function showSecret(value) {
    main.querySelector('.secret')?.remove();
    main.querySelector('form').after(el('p', { class: 'secret' }, 'Signing secret, shown once: ', el('code', { class: 'mono' }, value || '')));
  }
}

// ---------------------------------------------------------------- integrations

async function integrations() {
  const found = await api('GET', '/v1/integrations?limit=100');
  const form = el('form', { class: 'inline', 'aria-label': 'New integration' },
    field('Name', 'name', { required: true }),
    field('Hook type', 'hooks[0].type', { required: true }),
    field('Endpoint', 'hooks[0].endpoint', { required: true, size: 40 }),
    el('button', { type: 'submit' }, 'Create'));
  form.noValidate = true;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await api('POST', '/v1/integrations', {
        name: form.elements.name.value,
        hooks: [{ type: form.elements['hooks[0].type'].value, endpoint: form.elements['hooks[0].endpoint'].value }],
      });
      await integrations();
      main.querySelector('form').after(el('p', { class: 'secret' }, 'Signing secret, shown once: ', el('code', { class: 'mono' }, created.signingSecret || '')));
    } catch (error) { showErrors(form, error); }
  });
  const rows = found.items.map((i) => {
    const remove = el('button', { type: 'button', class: 'secondary', 'aria-label': `Delete ${i.name}` }, 'Delete');
    remove.addEventListener('click', async () => {
      await api('DELETE', `/v1/integrations/${encodeURIComponent(i.id)}`);
      await integrations();
      say(`Deleted ${i.name}.`);
    });
    const auth = i.authentication ? `OAuth2 ${i.authentication.client_auth || 'client_secret_basic'} at ${i.authentication.endpoint}` : 'none';
    return el('tr', {}, el('td', { class: 'mono' }, i.id), el('td', {}, i.name),
      el('td', {}, el('ul', {}, i.hooks.map((h) => el('li', {}, `${h.type} → `, el('span', { class: 'mono' }, h.endpoint))))),
      el('td', {}, auth), el('td', {}, i.plugin ? i.plugin.name : ''),
      el('td', {}, i.enabled ? 'enabled' : `disabled: ${i.disabledReason || ''}`), el('td', {}, remove));
  });
  page('Integrations', form,
    el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'Name', 'Hooks', 'Authentication', 'Plugin', 'State', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)));
}

// ---------------------------------------------------------------- plugins (admin)

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
      const text = (side) => (side?.error !== undefined ? `error: ${side.error}` : JSON.stringify(side?.outcome ?? side, null, 1));
      results.replaceChildren(
        el('p', {}, `${run.same} same, ${run.changed} changed, ${run.candidateFailed} failed with the candidate.`),
        el('table', {}, el('thead', {}, el('tr', {}, ['Event', 'Same', 'Active version', 'Candidate'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, run.events.map((e) => el('tr', {},
            el('td', { class: 'mono' }, e.eventId), el('td', {}, e.same ? 'yes' : 'no'),
            el('td', {}, el('pre', {}, text(e.active))), el('td', {}, el('pre', {}, text(e.candidate))))))));
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
  say('');
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
    else if (path === '/subscriptions') await subscriptions();
    else if (path === '/destinations') await destinations();
    else if (path === '/integrations') await integrations();
    else if (path === '/plugins') await plugins();
    else if (role === 'admin') await plugins();
    else await overview(params);
  } catch (error) {
    if (error.status !== 401) say(error.message);
  }
}

document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', render);
render();
