/**
 * The test vectors as docs/auth.md publishes them, read from the document
 * itself so the tests check what readers see.
 */
import { fromHex } from "../../src/bytes.js";
import { readDoc } from "./paths.js";

const authMd = readDoc("auth.md");

/** The `name: hex` lines of the text block under "## Test vectors". */
export function authVectors(): Map<string, Uint8Array> {
  const section = authMd.slice(authMd.indexOf("## Test vectors"));
  const block = /```text\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('docs/auth.md has no text block under "## Test vectors"');
  const vectors = new Map<string, Uint8Array>();
  for (const line of block[1]!.split("\n")) {
    const m = /^([a-z0-9_]+): ([0-9a-f]+)$/.exec(line.trim());
    if (m) vectors.set(m[1]!, fromHex(m[2]!));
  }
  return vectors;
}

/** One vector by name; a missing name fails the test that asked. */
export function vector(vectors: Map<string, Uint8Array>, name: string): Uint8Array {
  const v = vectors.get(name);
  if (!v) throw new Error(`docs/auth.md has no test vector "${name}"`);
  return v;
}

/** The test key of the appendix (PKCS#8 PEM, RSA-3072). */
export function authTestKeyPem(): string {
  const m = /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----/.exec(authMd.slice(authMd.indexOf("## Appendix")));
  if (!m) throw new Error("docs/auth.md's appendix has no PEM private key");
  return m[0];
}

/** The whole of docs/auth.md, for the prose vectors (tokens). */
export function authDoc(): string {
  return authMd;
}
