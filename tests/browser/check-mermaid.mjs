// Renders each mermaid file with mermaid's own library (from npm, loaded into the page
// from disk) in headless Chromium. One JSON line per file: ok, or mermaid's error.
// Exits 1 when any file does not render.
//
// usage: node check-mermaid.mjs FILE.mmd...
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
await page.setContent('<!DOCTYPE html><html><body><div id="out"></div></body></html>');
await page.addScriptTag({ path: require.resolve('mermaid/dist/mermaid.min.js') });
await page.evaluate(() => window.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' }));
let failed = false;
let i = 0;
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, 'utf8');
  const r = await page.evaluate(async ([id, src]) => {
    try {
      const { svg } = await window.mermaid.render(id, src);
      return { ok: svg.includes('<svg'), nodes: (svg.match(/class="node/g) || []).length };
    } catch (e) {
      return { ok: false, error: String(e && e.message ? e.message : e) };
    }
  }, [`g${i++}`, text]);
  failed ||= !r.ok;
  console.log(JSON.stringify({ file, ...r }));
}
await browser.close();
process.exit(failed ? 1 : 0);
