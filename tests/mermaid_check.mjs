// Parse mermaid files with mermaid's own parser (the one GitHub and GitLab run), under jsdom.
// Usage: node tests/mermaid_check.mjs NODE_PREFIX FILE...
// NODE_PREFIX is an `npm install --prefix` folder holding mermaid and jsdom. Prints one line
// per file, "ok FILE" or "invalid FILE: <parser message>"; exits 1 if any file is invalid.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, ...files] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(prefix), "package.json"));
const { JSDOM } = require("jsdom");
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
const { default: mermaid } = await import(pathToFileURL(require.resolve("mermaid")).href);
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of files) {
  try {
    const parsed = await mermaid.parse(fs.readFileSync(file, "utf8"));
    if (!parsed || parsed.diagramType !== "flowchart-v2") {
      throw new Error(`parsed as ${parsed && parsed.diagramType}, not a flowchart`);
    }
    console.log(`ok ${file}`);
  } catch (err) {
    failed += 1;
    console.log(`invalid ${file}: ${String(err.message || err).split("\n").join(" ")}`);
  }
}
process.exit(failed ? 1 : 0);
