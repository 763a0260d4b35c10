/**
 * Every await in the integration tests is bounded: a hang fails with a
 * message naming what was awaited, instead of stalling the run.
 */

/** `promise`, or a rejection after `ms` naming `what` (and `detail()` for context). */
export async function within<T>(promise: Promise<T>, ms: number, what: string, detail?: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const extra = detail ? `\n${detail()}` : "";
      reject(new Error(`timed out after ${ms} ms waiting for ${what}${extra}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks `probe` until it returns a value (not undefined), for things that
 * have no event (a search index catching up): bounded in time, with a short
 * pause between tries.
 */
export async function eventually<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
