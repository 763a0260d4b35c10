/**
 * A real bubble-server for the integration tests: started from
 * BUBBLE_SERVER_BIN (else ../target/debug/bubble-server) on free loopback
 * ports with a temporary data dir, killed and restarted on demand, stopped
 * at the end. Readiness is the server's own banner line, not a sleep.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { packageRoot } from "./paths.js";
import { within } from "./wait.js";

/** The server binary to run, or why there is none. */
export function serverBinary(): { path: string; missing?: undefined } | { path?: undefined; missing: string } {
  const fromEnv = process.env.BUBBLE_SERVER_BIN;
  const path = fromEnv ? resolve(fromEnv) : resolve(packageRoot, "..", "target", "debug", "bubble-server");
  if (!existsSync(path)) {
    const how = fromEnv ? `BUBBLE_SERVER_BIN=${fromEnv}` : `${path} (set BUBBLE_SERVER_BIN, or build it: cargo build -p bubble-server)`;
    return { missing: `integration tests skipped: no bubble-server binary at ${how}` };
  }
  return { path };
}

/** A loopback port nobody listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

const STARTUP_MS = 90_000;
const STOP_MS = 15_000;

export class TestServer {
  readonly dataDir: string;
  private process: ChildProcess | undefined;
  private output = "";
  adminSecret = "";
  serverKey = { pem: "", fingerprint: "" };

  private constructor(
    private readonly binary: string,
    readonly wsPort: number,
    readonly httpPort: number,
    private readonly settings: Record<string, string>,
  ) {
    this.dataDir = mkdtempSync(join(tmpdir(), "bubble-js-test-"));
  }

  /** Starts a server on fresh ports and a fresh data dir; `settings` are more BUBBLE_* variables. */
  static async start(binary: string, settings: Record<string, string> = {}): Promise<TestServer> {
    const server = new TestServer(binary, await freePort(), await freePort(), settings);
    await server.launch();
    return server;
  }

  /** The selector's base URL (the HTTP listener). */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** The WebSocket gate. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.wsPort}/`;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Starts the process (again) on the same data dir and ports; resolves once its banner says it runs. */
  async launch(): Promise<void> {
    if (this.running) throw new Error("the test server is already running");
    this.output = "";
    const child = spawn(this.binary, [], {
      env: {
        ...process.env,
        BUBBLE_DATA_DIR: this.dataDir,
        BUBBLE_GATE_TCP: "",
        BUBBLE_GATE_WS: `127.0.0.1:${this.wsPort}`,
        BUBBLE_HTTP_ADDR: `127.0.0.1:${this.httpPort}`,
        // A smaller key is generated faster on first start; tokens still fit (93 bytes).
        BUBBLE_GATE_RSA_BITS: "2048",
        BUBBLE_LOG: process.env.BUBBLE_LOG ?? "warn",
        ...this.settings,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.process = child;
    const ready = new Promise<void>((resolveReady, reject) => {
      const onData = (chunk: Buffer) => {
        this.output += chunk.toString();
        if (this.output.includes("bubble is running")) resolveReady();
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code, signal) => reject(new Error(`bubble-server exited during start (code ${code}, signal ${signal}):\n${this.output.slice(-3000)}`)));
      child.once("error", reject);
    });
    await within(ready, STARTUP_MS, `bubble-server to print "bubble is running"`, () => this.output.slice(-2000));
    this.adminSecret = readFileSync(join(this.dataDir, "admin_secret"), "utf8").trim();
    const key = (await this.http("GET", "/v1/server-key")) as { pem: string; fingerprint_sha256: string };
    this.serverKey = { pem: key.pem, fingerprint: key.fingerprint_sha256 };
  }

  /** kill -9: no drain, no goodbye; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await within(exited, STOP_MS, "bubble-server to die after SIGKILL");
  }

  /** Stops the server (SIGTERM, then SIGKILL) and removes its data dir. */
  async stop(): Promise<void> {
    const child = this.process;
    if (child && this.running) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      try {
        await within(exited, STOP_MS, "bubble-server to stop after SIGTERM");
      } catch {
        child.kill("SIGKILL");
        await within(exited, STOP_MS, "bubble-server to die after SIGKILL");
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The server's recent output, for failure messages. */
  get log(): string {
    return this.output.slice(-4000);
  }

  /** An admin or selector call; a non-2xx answer throws with its body. */
  async http(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.adminSecret}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await within(
      fetch(this.httpUrl + path, { method, headers, body: body === undefined ? null : JSON.stringify(body) }),
      10_000,
      `${method} ${path}`,
    );
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : text;
  }

  /** A token for `user` of `app` (demo unless given). */
  async token(user: string, app = "demo"): Promise<string> {
    const answer = (await this.http("POST", `/v1/admin/apps/${app}/tokens`, { user })) as { token: string };
    return answer.token;
  }

  /** The /metrics text. */
  async metrics(): Promise<string> {
    return String(await this.http("GET", "/metrics"));
  }

  /** One counter's value from /metrics (0 when absent), e.g. `bubble_handshakes_total{result="resumed"}`. */
  async counter(series: string): Promise<number> {
    const line = (await this.metrics()).split("\n").find((l) => l.startsWith(series + " "));
    return line ? Number(line.slice(series.length + 1)) : 0;
  }
}
