/**
 * A small typed event emitter that works the same in browsers and Node: a
 * listener that throws is reported to `onListenerError` instead of breaking
 * the client that emitted.
 */

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  constructor(private readonly onListenerError: (error: unknown, event: keyof Events) => void = () => {}) {}

  /** Calls `listener` on every `event`; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  /**
   * The next `event` that satisfies `accept`, as a promise; it rejects after
   * `timeoutMs` (when given) with a message naming what was awaited.
   */
  once<K extends keyof Events>(event: K, accept: (value: Events[K]) => boolean = () => true, timeoutMs?: number): Promise<Events[K]> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const off = this.on(event, (value) => {
        if (!accept(value)) return;
        off();
        if (timer !== undefined) clearTimeout(timer);
        resolve(value);
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          off();
          reject(new Error(`no "${String(event)}" event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(value);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}
