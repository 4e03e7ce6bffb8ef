#!/usr/bin/env node
// Drives Chromium (Debian's /usr/bin/chromium) through playwright-core for the browser tests.
//
//   node run.js [--chromium PATH]
//
// One browser serves every job of a test run (a launch costs seconds on a loaded machine). Jobs are
// JSON lines on stdin; each answer is one JSON line on stdout:
//   startup:  {"event":"ready","browser":VERSION}
//   answer:   {"id":ID,"ok":true,"result":{...}} or {"id":ID,"ok":false,"error":MESSAGE}
//
// Jobs:
//   {"id":1,"kind":"clients","urls":[U1,...],"timeoutMs":T}
//     opens each URL in its own browser context (own connection pool, as separate browsers would be:
//     Chromium allows 6 HTTP/1.1 connections per host and context, and every polling tab holds one),
//     waits until the page sets window.__result and returns {"tabs":[result,...]}.
//   {"id":2,"kind":"demo","url":U,"tabs":N,"message":TEXT,"screenshot":PATH,"timeoutMs":T}
//     opens N tabs of one context at the demo page, waits until each shows a backend and the websocket
//     transport, sends TEXT from tab 1 and waits for it in every tab's #messages.
//   {"id":3,"kind":"open","url":U,"width":W,"height":H,"timeoutMs":T}
//     opens U in a page of its own context and keeps it: {"page":P}. The page's console errors and
//     uncaught exceptions are kept for "close".
//   {"id":4,"kind":"wait","page":P,"expr":JS,"timeoutMs":T}   waits until the expression JS is truthy: {"value":V}
//   {"id":5,"kind":"eval","page":P,"expr":JS}                 its value (a promise is awaited): {"value":V}
//   {"id":6,"kind":"click"|"fill","page":P,"selector":S,"value":V}
//   {"id":7,"kind":"viewport","page":P,"width":W,"height":H}
//   {"id":8,"kind":"screenshot","page":P,"path":PATH}         a full-page PNG
//   {"id":9,"kind":"errors","page":P}                         its errors so far: {"errors":[...]}
//   {"id":10,"kind":"close","page":P}                         closes it: {"errors":[...]}
// End of stdin closes the browser and exits.
'use strict';

const path = require('path');
const readline = require('readline');
const { chromium } = require(path.join(__dirname, '..', 'node', 'node_modules', 'playwright-core'));

const args = process.argv.slice(2);
let executablePath = '/usr/bin/chromium';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--chromium') executablePath = args[++i];
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

async function clients(browser, job) {
  const timeout = job.timeoutMs || 60000;
  const contexts = [];
  try {
    const tabs = await Promise.all(job.urls.map(async (url) => {
      const ctx = await browser.newContext();
      contexts.push(ctx);
      const page = await ctx.newPage();
      const logs = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') logs.push(m.text()); });
      page.on('pageerror', (e) => logs.push('pageerror: ' + e.message));
      const t0 = Date.now();
      try {
        await page.goto(url, { timeout });
        const loadedMs = Date.now() - t0;
        const handle = await page.waitForFunction(() => window.__result, null, { timeout, polling: 50 });
        const result = await handle.jsonValue();
        return { ...result, loadedMs, doneMs: Date.now() - t0, console: logs };
      } catch (e) {
        // A tab that never finished still tells what it saw so far.
        const partial = await page.evaluate(() => window.__partial || null).catch(() => null);
        return { errors: ['browser: ' + e.message.split('\n')[0]], partial, console: logs };
      }
    }));
    return { tabs };
  } finally {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  }
}

async function demo(browser, job) {
  const timeout = job.timeoutMs || 60000;
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  try {
    const pages = [];
    for (let i = 0; i < job.tabs; i++) pages.push(await ctx.newPage());
    await Promise.all(pages.map((p) => p.goto(job.url, { timeout })));
    const text = (p, sel) => p.$eval(sel, (el) => el.textContent.trim());
    const tabs = await Promise.all(pages.map(async (p, i) => {
      try {
        await p.waitForFunction(() => {
          const b = document.querySelector('#backend');
          const t = document.querySelector('#transport');
          return b && t && b.textContent.trim() !== '' && t.textContent.trim() === 'websocket';
        }, null, { timeout, polling: 50 });
      } catch (e) {
        return { tab: i, error: 'not connected over websocket: ' + e.message.split('\n')[0] };
      }
      return { tab: i };
    }));
    for (const [i, p] of pages.entries()) {
      tabs[i].backend = await text(p, '#backend').catch(() => '');
      tabs[i].transport = await text(p, '#transport').catch(() => '');
      tabs[i].sid = await text(p, '#sid').catch(() => '');
    }
    await pages[0].fill('#text', job.message);
    await pages[0].click('#send');
    await Promise.all(pages.map(async (p, i) => {
      try {
        await p.waitForFunction((m) => {
          const el = document.querySelector('#messages');
          return el && el.textContent.includes(m);
        }, job.message, { timeout, polling: 50 });
        tabs[i].sawMessage = true;
      } catch (e) {
        tabs[i].sawMessage = false;
      }
      tabs[i].messages = await text(p, '#messages').catch(() => '');
    }));
    if (job.screenshot) {
      const shot = pages.length > 1 ? pages[1] : pages[0];
      await shot.screenshot({ path: job.screenshot, fullPage: true });
    }
    return { tabs };
  } finally {
    await ctx.close().catch(() => {});
  }
}

// Pages kept open between jobs, by number.
const pages = new Map();
let nextPage = 0;

function pageOf(job) {
  const p = pages.get(job.page);
  if (!p) throw new Error('no page ' + job.page);
  return p;
}

async function open(browser, job) {
  const ctx = await browser.newContext({ viewport: { width: job.width || 1280, height: job.height || 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  const id = ++nextPage;
  pages.set(id, { ctx, page, errors });
  await page.goto(job.url, { timeout: job.timeoutMs || 30000 });
  return { page: id };
}

// wait polls the expression from here rather than with page.waitForFunction, which evaluates a
// string inside the page and so needs 'unsafe-eval' from the page's Content-Security-Policy.
async function wait(browser, job) {
  const { page } = pageOf(job);
  const deadline = Date.now() + (job.timeoutMs || 30000);
  let last;
  for (;;) {
    try {
      last = await page.evaluate(job.expr);
      if (last) return { value: last };
    } catch (e) {
      last = 'error: ' + e.message.split('\n')[0]; // e.g. the page is navigating
    }
    if (Date.now() > deadline) throw new Error('timed out; last value ' + JSON.stringify(last));
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function evaluate(browser, job) {
  return { value: await pageOf(job).page.evaluate(job.expr) };
}

async function click(browser, job) {
  await pageOf(job).page.click(job.selector, { timeout: job.timeoutMs || 10000 });
  return {};
}

async function fill(browser, job) {
  await pageOf(job).page.fill(job.selector, job.value, { timeout: job.timeoutMs || 10000 });
  return {};
}

async function viewport(browser, job) {
  await pageOf(job).page.setViewportSize({ width: job.width, height: job.height });
  return {};
}

async function screenshot(browser, job) {
  await pageOf(job).page.screenshot({ path: job.path, fullPage: true });
  return {};
}

async function errors(browser, job) {
  return { errors: pageOf(job).errors.slice() };
}

async function close(browser, job) {
  const p = pageOf(job);
  pages.delete(job.page);
  await p.ctx.close().catch(() => {});
  return { errors: p.errors };
}

async function main() {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // Playwright gives every launch a fresh temporary profile (user-data-dir) and removes it on close.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  out({ event: 'ready', browser: browser.version() });
  const kinds = { clients, demo, open, wait, eval: evaluate, click, fill, viewport, screenshot, errors, close };
  const rl = readline.createInterface({ input: process.stdin });
  const pending = [];
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    let job;
    try {
      job = JSON.parse(line);
    } catch (e) {
      out({ id: null, ok: false, error: 'bad job: ' + e.message });
      return;
    }
    const run = kinds[job.kind];
    if (!run) {
      out({ id: job.id, ok: false, error: 'unknown kind ' + job.kind });
      return;
    }
    pending.push(run(browser, job)
      .then((result) => out({ id: job.id, ok: true, result }))
      .catch((e) => out({ id: job.id, ok: false, error: String(e && e.stack || e) })));
  });
  rl.on('close', async () => {
    await Promise.allSettled(pending);
    await browser.close().catch(() => {});
    process.exit(0);
  });
}

main().catch((e) => {
  process.stderr.write('run.js: ' + (e && e.stack || e) + '\n');
  process.exit(1);
});
