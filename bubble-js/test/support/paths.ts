/** Where the tests find the package and the repository's docs, wherever the compiled test runs from. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "bubble-js") return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the bubble-js package root above the test file");
    dir = up;
  }
}

/** The bubble-js folder. */
export const packageRoot = findPackageRoot();
/** The bubble repository (bubble-js's parent). */
export const repoRoot = resolve(packageRoot, "..");

/** A document of the repository's docs/ folder, as text. */
export function readDoc(name: string): string {
  return readFileSync(join(repoRoot, "docs", name), "utf8");
}
