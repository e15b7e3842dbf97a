#!/usr/bin/env node
// Runs the gRPC-Web browser test: bundles page.js with esbuild, serves index.html, the bundle
// and config.json ({server, descriptors}) from a small HTTP server of its own on 127.0.0.1 (an
// origin other than the gRPC server's, so the calls are cross-origin and CORS is exercised),
// opens the page in Debian's Chromium (headless, through playwright-core; no browser download)
// and waits for the page's result.
//
//   node run.mjs --server http://127.0.0.1:PORT --descriptors FILE [--timeout-ms 30000]
//                [--chromium /usr/bin/chromium] [--verbose]
//
// FILE is the Cache contract's encoded FileDescriptorSet (web_demo --descriptors FILE writes
// it). Prints one line, `RESULT <json>`: the page's result ({ok, checks, ...}) plus the page's
// console errors, uncaught errors and failed requests. Exits 0 only if every check of the page
// passed; 1 if one failed or the run did not finish in time; 2 on bad arguments. Everything (the
// bundle, the browser's launch, the page, the close) fits in --timeout-ms, and a watchdog ends
// the process shortly after it regardless. --verbose logs the browser's requests and responses
// (headers included) to stderr.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

function usage(message) {
  process.stderr.write(
    `run.mjs: ${message}\n` +
      "usage: node run.mjs --server http://127.0.0.1:PORT --descriptors FILE " +
      "[--timeout-ms 30000] [--chromium /usr/bin/chromium] [--verbose]\n",
  );
  process.exit(2);
}

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      server: { type: "string" },
      descriptors: { type: "string" },
      "timeout-ms": { type: "string", default: "30000" },
      chromium: { type: "string", default: "/usr/bin/chromium" },
      verbose: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usage(err.message);
}
if (!options.server) usage("--server is required");
if (!options.descriptors) usage("--descriptors is required");
const timeoutMs = Number(options["timeout-ms"]);
if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usage("--timeout-ms must be a positive integer");
let serverUrl;
try {
  serverUrl = new URL(options.server);
} catch {
  usage(`--server is not a URL: ${options.server}`);
}
if (serverUrl.protocol !== "http:" && serverUrl.protocol !== "https:") {
  usage(`--server must be http:// or https://: ${options.server}`);
}

const started = Date.now();
const deadline = started + timeoutMs;
const remaining = () => Math.max(1, deadline - Date.now());

// What the page and the browser said besides the result.
const report = { console: [], pageErrors: [], failedRequests: [] };
let printed = false;

function finish(pageResult, error) {
  if (printed) return;
  printed = true;
  const result = { ...(pageResult ?? { ok: false, checks: [] }) };
  if (error !== undefined) {
    result.ok = false;
    result.runError = error;
  }
  result.ok = result.ok === true && Array.isArray(result.checks) &&
    result.checks.length > 0 && result.checks.every((c) => c.ok === true);
  Object.assign(result, report, { elapsedMs: Date.now() - started });
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exitCode = result.ok ? 0 : 1;
}

// The last resort: whatever hangs (the browser's close included), the process ends.
const watchdog = setTimeout(() => {
  finish(undefined, `watchdog: the run did not end within ${timeoutMs} ms + 5000 ms`);
  process.exit(1);
}, timeoutMs + 5000);

function withDeadline(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: timed out (--timeout-ms ${timeoutMs})`)),
      remaining(),
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function log(line) {
  if (options.verbose) process.stderr.write(`run.mjs: ${line}\n`);
}

async function bundle() {
  const esbuild = await import("esbuild");
  try {
    const out = await esbuild.build({
      absWorkingDir: here,
      entryPoints: [join(here, "page.js")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: ["chrome110"],
      sourcemap: "inline",
      logLevel: "silent",
    });
    return out.outputFiles[0].text;
  } finally {
    await esbuild.stop();
  }
}

function serve(files) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://localhost").pathname;
    const file = files[path === "/" ? "/index.html" : path];
    if (req.method !== "GET" || file === undefined) {
      res.writeHead(req.method === "GET" ? 404 : 405, { "content-type": "text/plain" });
      res.end("not here\n");
      return;
    }
    res.writeHead(200, { "content-type": file.type, "cache-control": "no-store" });
    res.end(file.body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

async function main() {
  const descriptors = await readFile(options.descriptors);
  const [html, bundleJs] = await withDeadline(
    Promise.all([readFile(join(here, "index.html")), bundle()]),
    "bundling page.js",
  );
  const config = JSON.stringify({
    server: serverUrl.href.replace(/\/$/, ""),
    descriptors: descriptors.toString("base64"),
  });
  const server = await serve({
    "/index.html": { type: "text/html; charset=utf-8", body: html },
    "/bundle.js": { type: "text/javascript; charset=utf-8", body: bundleJs },
    "/config.json": { type: "application/json", body: config },
  });
  const pageUrl = `http://127.0.0.1:${server.address().port}/`;
  log(`page at ${pageUrl}, gRPC-Web server at ${serverUrl.href}`);

  let browser;
  try {
    const { chromium } = await import("playwright-core");
    browser = await withDeadline(
      chromium.launch({
        executablePath: options.chromium,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: remaining(),
      }),
      `launching ${options.chromium}`,
    );
    log(`browser ${browser.version()}`);
    const page = await withDeadline(browser.newPage(), "opening a page");
    page.on("console", (msg) => {
      if (msg.type() === "error") report.console.push(msg.text());
      log(`console.${msg.type()}: ${msg.text()}`);
    });
    page.on("pageerror", (err) => report.pageErrors.push(String(err?.stack ?? err)));
    page.on("requestfailed", (request) => {
      report.failedRequests.push(
        `${request.method()} ${request.url()}: ${request.failure()?.errorText ?? "failed"}`,
      );
    });
    if (options.verbose) {
      page.on("request", async (request) => {
        const headers = await request.allHeaders().catch(() => request.headers());
        log(`> ${request.method()} ${request.url()} ${JSON.stringify(headers)}`);
      });
      page.on("response", async (response) => {
        const headers = await response.allHeaders().catch(() => response.headers());
        log(`< ${response.status()} ${response.url()} ${JSON.stringify(headers)}`);
      });
      // CORS preflights are not Playwright requests: the DevTools protocol shows them.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Network.enable");
      cdp.on("Network.requestWillBeSent", (e) => {
        if (e.request.method === "OPTIONS") {
          log(`> preflight ${e.request.url} ${JSON.stringify(e.request.headers)}`);
        }
      });
      cdp.on("Network.responseReceived", (e) => {
        if (e.type === "Preflight") {
          log(`< preflight ${e.response.status} ${e.response.url} ${JSON.stringify(e.response.headers)}`);
        }
      });
    }
    await page.goto(pageUrl, { timeout: remaining(), waitUntil: "load" });
    try {
      await page.waitForFunction(() => window.__result !== undefined, undefined, {
        timeout: remaining(),
        polling: 100,
      });
    } catch (err) {
      // The checks done so far, if the page can still say (bounded: the deadline has passed).
      const partial = await Promise.race([
        page.evaluate(() => window.__partial).catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 1000)),
      ]);
      finish(
        partial && { ...partial, ok: false },
        `no result from the page within --timeout-ms ${timeoutMs} (${err?.message ?? err})`,
      );
      return;
    }
    finish(await withDeadline(page.evaluate(() => window.__result), "reading the result"));
  } catch (err) {
    finish(undefined, String(err?.message ?? err));
  } finally {
    if (browser !== undefined) {
      await Promise.race([
        browser.close().catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 5000)),
      ]);
    }
    server.closeAllConnections();
    server.close();
  }
}

main()
  .catch((err) => finish(undefined, String(err?.stack ?? err)))
  .finally(() => {
    clearTimeout(watchdog);
    process.exit(process.exitCode ?? 1);
  });
