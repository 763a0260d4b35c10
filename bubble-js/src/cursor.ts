/**
 * The device's local cursor: the newest inbox version it has delivered, and
 * for each super group (and the broadcast log) the newest seq. Every
 * (re)connect syncs from it (protocol.md 4.4), so where it is kept decides
 * what a restarted app downloads again. Storage is pluggable: memory by
 * default, Web Storage in a browser, anything async an app likes.
 */

export interface Cursor {
  /** The newest inbox version delivered (0: nothing yet: sync from the start). */
  version: bigint;
  /** Per super group id (and "~broadcast"): the newest seq delivered. */
  channels: Record<string, bigint>;
}

/** Where the cursor lives between connections and app restarts. */
export interface CursorStore {
  /** The saved cursor, or undefined on a fresh install. */
  load(): Promise<Cursor | undefined>;
  /** Saves the cursor; called after each change, one call at a time. */
  save(cursor: Cursor): Promise<void>;
}

/** A fresh copy, so a store never shares its object with the client. */
export function copyCursor(cursor: Cursor): Cursor {
  return { version: cursor.version, channels: { ...cursor.channels } };
}

/** Keeps the cursor in memory: lost with the process, shared by clients given the same instance. */
export class MemoryCursorStore implements CursorStore {
  private cursor: Cursor | undefined;

  constructor(initial?: Cursor) {
    this.cursor = initial && copyCursor(initial);
  }

  async load(): Promise<Cursor | undefined> {
    return this.cursor && copyCursor(this.cursor);
  }

  async save(cursor: Cursor): Promise<void> {
    this.cursor = copyCursor(cursor);
  }
}

/** The part of the Web Storage API (localStorage) the store below uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Keeps the cursor in Web Storage (e.g. `localStorage`) under `key`, as JSON with versions as strings. */
export class WebStorageCursorStore implements CursorStore {
  constructor(
    private readonly storage: StorageLike,
    private readonly key: string,
  ) {}

  async load(): Promise<Cursor | undefined> {
    const text = this.storage.getItem(this.key);
    if (text === null) return undefined;
    try {
      const raw = JSON.parse(text) as { version: string; channels?: Record<string, string> };
      const channels: Record<string, bigint> = {};
      for (const [group, seq] of Object.entries(raw.channels ?? {})) channels[group] = BigInt(seq);
      return { version: BigInt(raw.version), channels };
    } catch {
      // A cursor that does not parse is treated as none: the device syncs from the start.
      return undefined;
    }
  }

  async save(cursor: Cursor): Promise<void> {
    const channels: Record<string, string> = {};
    for (const [group, seq] of Object.entries(cursor.channels)) channels[group] = seq.toString();
    this.storage.setItem(this.key, JSON.stringify({ version: cursor.version.toString(), channels }));
  }
}
