// Hookgate's plugin SDK for JavaScript.
//
// A plugin is a module `app.js` that exports `transform(event, config)`: it
// gets the platform's `Event` and the integration's `Config` and returns an
// `Outcome` (deliver requests, or drop the event), or throws `InvalidEvent`
// / `Failed` (neither is retried; any other exception counts as `Failed`
// with its message).
//
// `hookgate plugin build` turns the folder into a WebAssembly component
// (with componentize-js); `node --test` runs its tests natively with `run`.
//
// JSON bodies made with `Request.json` are compact with keys sorted, as the
// Rust and Python SDKs write them: the same plugin in any of the three
// languages sends the same bytes. JavaScript numbers are doubles: integers
// past 2^53 lose precision in `event.json()`.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The event is not what the plugin expects (bad shape, missing field). */
export class InvalidEvent extends Error {
  constructor(message) {
    super(message);
    this.name = 'InvalidEvent';
    this.hookgateError = 'invalid-event';
  }
}

/** Anything else went wrong (bad configuration, a bug). */
export class Failed extends Error {
  constructor(message) {
    super(message);
    this.name = 'Failed';
    this.hookgateError = 'failed';
  }
}

function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sorted(value[key]);
    return out;
  }
  return value;
}

/** JSON as every Hookgate SDK writes it: compact, keys sorted, UTF-8. */
export function dumps(value) {
  return JSON.stringify(sorted(value));
}

/** The event the platform posted, as Hookgate accepted it. */
export class Event {
  constructor({ id, hookType, integration, occurredAtMs, contentType, body }) {
    this.id = id;
    this.hookType = hookType;
    this.integration = integration;
    this.occurredAtMs = Number(occurredAtMs);
    this.contentType = contentType;
    this.body = body;
  }

  /** The body parsed as JSON; `InvalidEvent` when it is not. */
  json() {
    try {
      return JSON.parse(decoder.decode(this.body));
    } catch (error) {
      throw new InvalidEvent(`event body is not the expected JSON: ${error.message}`);
    }
  }

  /** An event for tests, with `value` as its JSON body. */
  static fromJson(hookType, value, { id = 'evt_test', integration = 'int_test', occurredAtMs = 1_700_000_000_000 } = {}) {
    return new Event({ id, hookType, integration, occurredAtMs, contentType: 'application/json', body: encoder.encode(dumps(value)) });
  }
}

/** One outgoing request; the host adds signature, auth and user-agent. */
export class Request {
  constructor(body, contentType = 'application/json', headers = []) {
    this.body = body;
    this.contentType = contentType;
    this.headers = headers;
  }

  /** A request whose body is `value` as JSON (see `dumps`). */
  static json(value) {
    return new Request(encoder.encode(dumps(value)));
  }

  /** Adds an extra header (the host refuses the names it owns). */
  header(name, value) {
    this.headers.push([name, value]);
    return this;
  }

  /** The first value of header `name` (any case). */
  headerValue(name) {
    const found = this.headers.find(([n]) => n.toLowerCase() === name.toLowerCase());
    return found ? found[1] : undefined;
  }

  /** The body parsed as JSON. */
  bodyJson() {
    return JSON.parse(decoder.decode(this.body));
  }
}

/** What to do with the event: send `requests`, or drop it for `dropped`. */
export class Outcome {
  constructor(requests, dropped) {
    this.requests = requests;
    this.dropped = dropped;
  }

  static deliver(...requests) {
    return new Outcome(requests, undefined);
  }

  static drop(reason) {
    return new Outcome([], reason);
  }
}

/** The integration's configuration (the string map set on it). */
export class Config {
  constructor(lookup) {
    this.lookup = lookup;
  }

  get(key, fallback = null) {
    const value = this.lookup(key);
    return value === undefined || value === null ? fallback : value;
  }
}

/** A line in the gateway's log: `level` is trace, debug, info, warn or error. */
export function log(level, message) {
  const host = globalThis.__hookgateLog;
  if (host) host(level, String(message));
  else console.error(`[${level}] ${message}`);
}

/** Runs `transform` natively, as the gateway would, for tests. */
export function run(transform, event, config = {}) {
  const outcome = transform(event, new Config((key) => config[key]));
  if (!(outcome instanceof Outcome)) {
    throw new Failed(`transform returned ${typeof outcome}, not an Outcome`);
  }
  return outcome;
}
