#!/usr/bin/env node
/**
 * Bundles the SDK (src/, with @bufbuild/protobuf) into one ES module,
 * web/bubble.js, that the web chat imports and bubble-server embeds: a
 * browser loads it as it is, with no import map and no build step.
 *
 *   node scripts/bundle.mjs           write web/bubble.js
 *   node scripts/bundle.mjs --check   fail if web/bubble.js differs from what the sources give
 *
 * esbuild's output depends only on the sources and its version (pinned in
 * package-lock.json), so the check is exact.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const bundlePath = join(root, "web", "bubble.js");

const protobuf = JSON.parse(readFileSync(join(root, "node_modules", "@bufbuild", "protobuf", "package.json"), "utf8"));
// esbuild drops the `//` license headers of the bundled files: say it here.
const banner = [
  "// bubble-js bundled for browsers: generated from bubble-js/src by `npm run bundle`; do not edit.",
  `// Includes @bufbuild/protobuf ${protobuf.version}, Copyright 2021-2026 Buf Technologies, Inc. (license: ${protobuf.license}).`,
].join("\n");

/** The bundle the sources give now, as text. */
export async function bundle() {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ["src/index.ts"],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    charset: "utf8",
    legalComments: "inline",
    banner: { js: banner },
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

async function main() {
  const fresh = await bundle();
  if (process.argv.includes("--check")) {
    const committed = readFileSync(bundlePath, "utf8");
    if (committed !== fresh) {
      console.error(`${bundlePath} is out of date with bubble-js/src: run \`npm run bundle\` in bubble-js and commit the result`);
      process.exit(1);
    }
    console.log(`${bundlePath} is up to date`);
    return;
  }
  writeFileSync(bundlePath, fresh);
  console.log(`wrote ${bundlePath} (${Math.round(fresh.length / 1024)} KiB)`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
