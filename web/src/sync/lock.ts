/**
 * Mutual exclusion: one sync at a time across tabs and the service worker through the Web Locks
 * API where it exists, otherwise within this JavaScript context only.
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

const local = new Map<string, Mutex>();

export function withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  if (nav?.locks && typeof nav.locks.request === 'function') {
    return nav.locks.request(name, work);
  }
  let m = local.get(name);
  if (!m) {
    m = new Mutex();
    local.set(name, m);
  }
  return m.run(work);
}
