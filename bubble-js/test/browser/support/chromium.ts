/**
 * Debian's Chromium, driven by puppeteer-core: no browser is downloaded.
 * scripts/services/chromium.sh installs it (`apt-get install chromium`).
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

import puppeteer, { type Browser } from "puppeteer-core";

import { packageRoot } from "../../support/paths.js";

/** The browser to drive, or why there is none. */
export function chromiumBinary(): { path: string; missing?: undefined } | { path?: undefined; missing: string } {
  const path = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
  if (existsSync(path)) return { path };
  return { missing: `browser tests skipped: no Chromium at ${path} (apt-get install chromium, or bash scripts/services/chromium.sh; CHROMIUM_BIN names another)` };
}

/** A headless Chromium. Root (CI) cannot use Chromium's sandbox, hence --no-sandbox. */
export function launchChromium(path: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath: path,
    headless: true,
    // Small /dev/shm in containers; no first-run chores; no GPU here.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run", "--disable-gpu"],
    protocolTimeout: 60_000,
  });
}

/**
 * Where a run keeps its screenshots: bubble-js/test-artifacts/browser/
 * (gitignored; BUBBLE_TEST_ARTIFACTS names another), emptied at the start
 * of each run so it holds the last run only.
 */
export function artifactsDir(): string {
  const dir = resolve(process.env.BUBBLE_TEST_ARTIFACTS ?? join(packageRoot, "test-artifacts", "browser"));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
