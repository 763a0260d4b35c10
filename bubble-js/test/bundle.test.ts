/**
 * The web chat loads the SDK as one committed module, web/bubble.js (no
 * build step to run it; bubble-server embeds it). It must be what the
 * sources give today: a change to src/ without `npm run bundle` fails here.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { pathToFileURL } from "node:url";

import { packageRoot } from "./support/paths.js";

it("web/bubble.js is the bundle of the current sources (else: npm run bundle)", async () => {
  const script = pathToFileURL(join(packageRoot, "scripts", "bundle.mjs")).href;
  const { bundle, bundlePath } = (await import(script)) as { bundle(): Promise<string>; bundlePath: string };
  const committed = readFileSync(bundlePath, "utf8");
  assert.ok(committed === (await bundle()), `${bundlePath} is out of date with src/: run \`npm run bundle\` in bubble-js and commit web/bubble.js`);
});
