// Loads each HTML file from disk in headless Chromium and reports, as one JSON line per
// file: console errors and warnings, page errors, every request that is not the file
// itself (there must be none: the page is self-contained), the number of SVG figures, and
// how many distinct colours a full-page screenshot has (a blank page has one or two).
// Exits 1 when any file has an error, a request, no figure, or a blank screenshot.
//
// usage: node check-page.mjs [--out DIR] FILE.html...
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
let out = null;
if (args[0] === '--out') {
  out = args[1];
  args.splice(0, 2);
  fs.mkdirSync(out, { recursive: true });
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

async function colours(png) {
  const page = await browser.newPage();
  await page.setContent('<canvas id="c"></canvas>');
  const n = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.getElementById('c');
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, img.width, img.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, png.toString('base64'));
  await page.close();
  return n;
}

let failed = false;
for (const file of args) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  const requests = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  const url = 'file://' + path.resolve(file);
  page.on('request', (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url, { waitUntil: 'load' });
  const figures = await page.locator('svg').count();
  const png = await page.screenshot({ fullPage: true });
  if (out) fs.writeFileSync(path.join(out, path.basename(path.dirname(path.resolve(file))) + '.png'), png);
  const n = await colours(png);
  const ok = problems.length === 0 && requests.length === 0 && figures > 0 && n > 8;
  failed ||= !ok;
  console.log(JSON.stringify({ file, ok, problems, requests, figures, colours: n }));
  await page.close();
}
await browser.close();
process.exit(failed ? 1 : 0);
