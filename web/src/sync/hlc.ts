/**
 * Hybrid logical clock readings, "<millis:15>-<counter:5>-<deviceId>" (docs/protocol.md,
 * Mutation): string order is clock order. Mirrors org.civicsync.core.clock.Hlc.
 */
const FORM = /^([0-9]{15})-([0-9]{5})-([A-Za-z0-9_-]{1,64})$/;
export const MAX_COUNTER = 99_999;

export interface Hlc {
  readonly millis: number;
  readonly counter: number;
  readonly deviceId: string;
}

export function parseHlc(text: string): Hlc {
  const m = FORM.exec(text);
  if (!m) throw new Error('not an HLC reading: ' + text);
  return { millis: Number(m[1]), counter: Number(m[2]), deviceId: m[3]! };
}

export function formatHlc(h: Hlc): string {
  return String(h.millis).padStart(15, '0') + '-' + String(h.counter).padStart(5, '0') + '-' + h.deviceId;
}

function advance(millis: number, counter: number, deviceId: string): Hlc {
  return counter < MAX_COUNTER ? { millis, counter: counter + 1, deviceId } : { millis: millis + 1, counter: 0, deviceId };
}

/** The reading for a local event: wall time once it has moved past the last reading, else the counter advanced. */
export function tickHlc(last: Hlc | undefined, wallMillis: number, deviceId: string): Hlc {
  if (!last || wallMillis > last.millis) return { millis: wallMillis, counter: 0, deviceId };
  return advance(last.millis, last.counter, deviceId);
}

/** The reading after seeing another clock's: never behind either clock or the wall. */
export function receiveHlc(last: Hlc | undefined, remote: Hlc, wallMillis: number, deviceId: string): Hlc {
  const local = last ? last.millis : -1;
  const m = Math.max(wallMillis, local, remote.millis);
  if (last && m === local && m === remote.millis) return advance(m, Math.max(last.counter, remote.counter), deviceId);
  if (last && m === local) return advance(m, last.counter, deviceId);
  if (m === remote.millis) return advance(m, remote.counter, deviceId);
  return { millis: m, counter: 0, deviceId };
}
