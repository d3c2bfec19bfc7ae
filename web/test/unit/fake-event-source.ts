/**
 * A stand-in for the browser's EventSource, driven by the test: it records every stream the
 * client opens (URL, token, closed or not), and the test plays the server's side with open(),
 * event() and fail(). Nothing is sent over a network.
 */
type Listener = (ev: Event) => void;

export class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;

  readonly url: string;
  readyState = FakeEventSource.CONNECTING;
  onopen: Listener | null = null;
  onmessage: Listener | null = null;
  onerror: Listener | null = null;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(url: string | URL, readonly registry: FakeEventSource[]) {
    this.url = String(url);
    registry.push(this);
  }

  /** The device token the client put in the URL. */
  get token(): string | null {
    return new URL(this.url).searchParams.get('access_token');
  }

  get closed(): boolean {
    return this.readyState === FakeEventSource.CLOSED;
  }

  addEventListener(type: string, l: Listener): void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(l);
  }

  removeEventListener(type: string, l: Listener): void {
    this.listeners.get(type)?.delete(l);
  }

  close(): void {
    this.readyState = FakeEventSource.CLOSED;
  }

  private dispatch(type: string, ev: Event): void {
    if (this.closed) return; // a closed EventSource says nothing more
    const on = type === 'open' ? this.onopen : type === 'error' ? this.onerror : type === 'message' ? this.onmessage : null;
    on?.(ev);
    for (const l of [...(this.listeners.get(type) ?? [])]) l(ev);
  }

  // ---- the server's side

  /** The server answered 200 text/event-stream. */
  open(): this {
    this.readyState = FakeEventSource.OPEN;
    this.dispatch('open', new Event('open'));
    return this;
  }

  /** An event, e.g. event('changes', 1190): `event: changes`, `id: 1190`, `data: {"head":1190}`. */
  event(type: 'ready' | 'changes', head: number): this {
    if (this.readyState !== FakeEventSource.OPEN) this.open();
    this.dispatch(type, new MessageEvent(type, { data: JSON.stringify({ head }), lastEventId: String(head) }));
    return this;
  }

  /** The connection failed or broke; a real EventSource would now reconnect on its own (CONNECTING). */
  fail(): this {
    this.readyState = FakeEventSource.CONNECTING;
    this.dispatch('error', new Event('error'));
    return this;
  }
}

/** A constructor to hand to the client (ClientOptions.eventSource), and every stream it opened. */
export function fakeEventSources(): { ctor: typeof EventSource; all: FakeEventSource[]; last(): FakeEventSource } {
  const all: FakeEventSource[] = [];
  class Bound extends FakeEventSource {
    constructor(url: string | URL) {
      super(url, all);
    }
  }
  return {
    ctor: Bound as unknown as typeof EventSource,
    all,
    last: () => {
      const es = all[all.length - 1];
      if (!es) throw new Error('no stream was opened');
      return es;
    },
  };
}
