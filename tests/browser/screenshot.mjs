// A screenshot of a page (or an SVG) from disk, in headless Chromium, for the README.
//
// usage: node screenshot.mjs IN.html|IN.svg OUT.png WIDTH [MAX_HEIGHT]
import path from 'node:path';
import { chromium } from 'playwright-core';

const [input, output, width, maxHeight] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: Number(width), height: 800 } });
await page.goto('file://' + path.resolve(input), { waitUntil: 'load' });
// An SVG document says its own size; a page's is what it scrolls to.
const full = await page.evaluate(() => {
  const e = document.documentElement;
  if (e.tagName.toLowerCase() === 'svg') return [Math.ceil(Number(e.getAttribute('width'))), Math.ceil(Number(e.getAttribute('height')))];
  return [e.scrollWidth, e.scrollHeight];
});
const height = maxHeight ? Math.min(full[1], Number(maxHeight)) : full[1];
await page.setViewportSize({ width: Math.min(full[0], Number(width)), height });
await page.screenshot({ path: output });
await browser.close();
