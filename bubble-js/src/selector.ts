/**
 * The selector (docs/admin-api.md "Selector"): `GET <http>/v1/gate` names the
 * least loaded gate. Every node is a selector; a client lists several, tries
 * them in turn, and asks again on every reconnect, so a dead node is skipped.
 */
import { BubbleError, ErrorCode } from "./errors.js";

/** The selector's answer, as far as a WebSocket client needs it. */
export interface GateChoice {
  node: string;
  /** The gate's WebSocket URL, e.g. "ws://127.0.0.1:7701/". */
  ws: string;
  /** The server key the selector advertises; informational: the client's own pin decides. */
  serverKeyFingerprint: string | undefined;
}

/** How to ask: `fetch` is the platform's unless injected. */
export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

/** Asks one selector (`base`, e.g. "http://127.0.0.1:7780") for a gate. */
export async function askSelector(base: string, timeoutMs: number, fetchImpl?: FetchLike): Promise<GateChoice> {
  const doFetch = fetchImpl ?? (globalThis as { fetch?: FetchLike }).fetch;
  if (!doFetch) throw BubbleError.invalid("no fetch in this runtime: pass `fetch` in the options, or connect to a gate URL directly");
  const url = base.replace(/\/+$/, "") + "/v1/gate";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let status: number;
  let text: string;
  try {
    const response = await doFetch(url, { signal: abort.signal });
    status = response.status;
    text = await response.text();
    if (!response.ok) {
      throw new BubbleError(ErrorCode.UNAVAILABLE, `the selector ${url} answered ${status}: ${text.slice(0, 200)}`, { retryable: true });
    }
  } catch (cause) {
    if (cause instanceof BubbleError) throw cause;
    const why = abort.signal.aborted ? `no answer within ${timeoutMs} ms` : String(cause);
    throw new BubbleError(ErrorCode.UNAVAILABLE, `cannot reach the selector ${url}: ${why}`, { retryable: true, cause });
  } finally {
    clearTimeout(timer);
  }
  let body: { node?: unknown; ws?: unknown; server_key?: { fingerprint_sha256?: unknown } };
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new BubbleError(ErrorCode.UNAVAILABLE, `the selector ${url} answered ${status} with something that is not JSON: ${text.slice(0, 100)}`, { retryable: true, cause });
  }
  if (typeof body.ws !== "string" || body.ws === "") {
    throw new BubbleError(ErrorCode.UNAVAILABLE, `the selector ${url} named no WebSocket gate (is the server's gate.ws off?): ${text.slice(0, 200)}`, { retryable: true });
  }
  const fingerprint = body.server_key?.fingerprint_sha256;
  return {
    node: typeof body.node === "string" ? body.node : "",
    ws: body.ws,
    serverKeyFingerprint: typeof fingerprint === "string" ? fingerprint : undefined,
  };
}

/**
 * Asks the selectors in turn, starting at `start` (so successive reconnects
 * spread over them), and returns the first answer with the index that gave it.
 */
export async function pickGate(bases: string[], start: number, timeoutMs: number, fetchImpl?: FetchLike): Promise<{ gate: GateChoice; index: number }> {
  if (bases.length === 0) throw BubbleError.invalid("no selector URL given");
  const failures: string[] = [];
  for (let i = 0; i < bases.length; i++) {
    const index = (start + i) % bases.length;
    try {
      return { gate: await askSelector(bases[index]!, timeoutMs, fetchImpl), index };
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  throw new BubbleError(ErrorCode.UNAVAILABLE, `no selector answered: ${failures.join("; ")}`, { retryable: true });
}
