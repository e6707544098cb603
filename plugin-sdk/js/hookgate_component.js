// The component's side of a JavaScript plugin: implements the WIT world
// `integration` on top of the author's `app.js` and `hookgate.js`.
// Generated bindings stay here; authors never see them.

import { config as hostConfig, log as hostLog } from 'hookgate:plugin/host@0.1.0';
import { Config, Event, Outcome } from './hookgate.js';
import { transform as appTransform } from './app.js';

// Messages of plugin errors are cut here (the gateway cuts them again).
const MAX_MESSAGE = 1000;
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error']);

globalThis.__hookgateLog = (level, message) => hostLog(LEVELS.has(level) ? level : 'info', message);

function cut(message) {
  return message.length <= MAX_MESSAGE ? message : message.slice(0, MAX_MESSAGE - 1) + '…';
}

function pluginError(error) {
  if (error?.hookgateError === 'invalid-event') return { tag: 'invalid-event', val: cut(error.message) };
  if (error?.hookgateError === 'failed') return { tag: 'failed', val: cut(error.message) };
  const message = error instanceof Error ? `${error.name}: ${error.message}` : `thrown: ${String(error)}`;
  return { tag: 'failed', val: cut(message) };
}

export function transform(event) {
  let outcome;
  try {
    outcome = appTransform(new Event(event), new Config((key) => hostConfig(key)));
  } catch (error) {
    throw pluginError(error);
  }
  if (!(outcome instanceof Outcome)) {
    throw { tag: 'failed', val: `transform returned ${typeof outcome}, not an Outcome` };
  }
  if (outcome.dropped !== undefined) return { tag: 'drop', val: String(outcome.dropped) };
  return {
    tag: 'deliver',
    val: outcome.requests.map((r) => ({
      body: r.body,
      contentType: r.contentType,
      headers: r.headers.map(([name, value]) => ({ name, value })),
    })),
  };
}
