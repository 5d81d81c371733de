// The results pages in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Opens the pages of a web service that real worker runs
// populated, checks what they show, follows the links to the run's files,
// checks that the statistics chart draws with JavaScript and that the table
// shows the same numbers without it, and saves a screenshot of every page.
// Usage: node pages.test.mjs BASE_URL PACKAGE RELEASE ARCH SCREENSHOT_DIR
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const [base, pkg, release, arch, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node pages.test.mjs BASE_URL PACKAGE RELEASE ARCH SCREENSHOT_DIR");
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let failures = 0;
const problems = [];

// A page that records console errors, page errors (CSP violations among them) and dialogs.
async function open(context, url) {
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") problems.push(`${url}: console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`${url}: page error: ${e.message}`));
  page.on("dialog", (d) => { problems.push(`${url}: a dialog opened: ${d.message()}`); d.dismiss(); });
  const response = await page.goto(base + url, { waitUntil: "load" });
  assert.equal(response.status(), 200, `${url}: status ${response.status()}`);
  return page;
}

async function check(name, body) {
  try {
    await body();
    console.log(`ok - ${name}`);
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}\n  ${String(e.stack || e).split("\n").join("\n  ")}`);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

const js = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const nojs = await browser.newContext({ viewport: { width: 1280, height: 900 }, javaScriptEnabled: false });
let runUrl = null;

await check("home: recent results, queue counts, links for programs, styles from the service", async () => {
  const page = await open(js, "/");
  assert.match(await page.title(), /autopkgtest/);
  assert.ok(await page.locator(`#recent a[href="/packages/${pkg}"]`).count() >= 1, "the run is among the recent");
  assert.equal(await page.locator("#queue-counts tbody tr").count() >= 1, true);
  assert.equal(await page.locator('a[href="/static/autopkgtest.db"]').count(), 1);
  // Bootstrap from libjs-bootstrap5 is applied: the navbar is dark.
  const bg = await page.locator("nav.navbar").evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.notEqual(bg, "rgba(0, 0, 0, 0)", "Bootstrap's CSS is loaded");
  // The search box goes to the package.
  await page.fill('input[name="name"]', pkg);
  await Promise.all([page.waitForURL(`**/packages/${pkg}`), page.press('input[name="name"]', "Enter")]);
  await shot(page, "package");
  await page.goto(base + "/");
  await shot(page, "home");
  await page.close();
});

await check("package: the matrix links to the history", async () => {
  const page = await open(js, `/packages/${pkg}`);
  const cell = page.locator(`#matrix a.badge`).first();
  assert.equal((await cell.textContent()).trim(), "pass");
  await Promise.all([page.waitForURL(`**/packages/${pkg}/${release}/${arch}`), cell.click()]);
  assert.ok(await page.locator("#history tbody tr.run").count() >= 1);
  runUrl = new URL(await page.locator("#history tbody tr.run td a").first().getAttribute("href"), base).pathname;
  await shot(page, "history");
  // The files of the run, followed from the history row.
  for (const [label, type, content] of [["log", /text\/plain/, /autopkgtest/], ["artifacts", /application\/(x-)?gzip|octet-stream|x-tar/, null],
                                        ["result.tar", /x-tar|octet-stream/, null]]) {
    const href = await page.locator(`#history tbody tr.run td.links a:text-is("${label}")`).first().getAttribute("href");
    const r = await page.request.get(base + href);
    assert.equal(r.status(), 200, `${label}: ${href}`);
    assert.match(r.headers()["content-type"], type, `${label}: content type`);
    if (content) assert.match(await r.text(), content, `${label}: content`);
  }
  await page.close();
});

await check("run: facts, per-test results, the log in sections with line anchors", async () => {
  assert.ok(runUrl, "the history gave the run's page");
  const page = await open(js, runUrl);
  assert.equal(await page.locator("#run-info .badge").first().textContent(), "pass");
  const tests = await page.locator("#tests tbody tr td:first-child").allTextContents();
  assert.ok(tests.includes("smoke"), `tests: ${tests}`);
  assert.equal(await page.locator("#section-setup").count(), 1);
  assert.equal(await page.locator("#section-test-smoke.section-pass").count(), 1);
  assert.match(await page.locator("#section-test-smoke pre.log").first().textContent(), /hello from hello-apc/);
  assert.match(await page.locator("#section-test-smoke pre.test-output").first().textContent(), /hello from hello-apc/,
               "smoke's stdout from artifacts.tar.gz");
  await page.locator('#L3 a.ln').click();
  assert.equal(new URL(page.url()).hash, "#L3");
  // The section links jump to their section.
  await page.locator('#log-sections a[href="#section-test-smoke"]').click();
  assert.equal(new URL(page.url()).hash, "#section-test-smoke");
  await page.goto(base + runUrl);
  await shot(page, "run");
  await page.close();
});

await check("running: queue lengths, live refresh without reloading", async () => {
  const page = await open(js, "/running");
  assert.ok(await page.locator("#queue-lengths tbody tr").count() >= 1);
  await page.waitForFunction(() => document.getElementById("running").dataset.refreshed, null, { timeout: 10000 });
  await shot(page, "running");
  await page.close();
});

await check("statistics: the chart draws with JavaScript", async () => {
  const page = await open(js, "/statistics");
  assert.ok(await page.locator("#statistics tbody tr").count() >= 1);
  await page.waitForFunction(() => {
    const c = document.querySelector("canvas.chart");
    return c && c.dataset.drawn === "yes" && c.chart && c.chart.data.datasets.length === 5;
  }, null, { timeout: 10000 });
  const passes = await page.evaluate(() => document.querySelector("canvas.chart").chart.data.datasets[0].data.reduce((a, b) => a + b, 0));
  assert.ok(passes >= 1, `passes charted: ${passes}`);
  await shot(page, "statistics");
  await page.close();
});

await check("statistics without JavaScript: the table shows the same numbers", async () => {
  const page = await open(nojs, "/statistics");
  const row = await page.locator("#statistics tbody tr").first().locator("td").allTextContents();
  assert.equal(row[0], release);
  assert.ok(Number(row[5]) >= 1, `runs passed: ${row}`);
  assert.equal(await page.locator("canvas.chart[data-drawn]").count(), 0, "no chart without JavaScript");
  await page.locator("details summary").first().click();
  assert.ok(await page.locator("table.days-table tbody tr").first().isVisible());
  await shot(page, "statistics-nojs");
  await page.close();
});

await check("the other pages answer and show no errors", async () => {
  for (const url of ["/recent", "/queued", "/testlist", `/user/${process.env.USER || "root"}/`, `/feeds/${pkg}.atom`]) {
    const page = await open(nojs, url);
    await page.close();
  }
  const feed = await js.request.get(base + `/feeds/${pkg}.atom`);
  assert.match(feed.headers()["content-type"], /application\/atom\+xml/);
  assert.match(await feed.text(), /<feed xmlns="http:\/\/www.w3.org\/2005\/Atom"/);
  const missing = await js.request.get(base + "/no/such/page");
  assert.equal(missing.status(), 404);
  assert.match(missing.headers()["content-type"], /text\/html/);
});

await check("request form: confirmation page first, then the POST queues it", async () => {
  const user = process.env.APCLOUD_BROWSER_USER, key = process.env.APCLOUD_BROWSER_KEY;
  assert.ok(user && key, "APCLOUD_BROWSER_USER and APCLOUD_BROWSER_KEY are set by tests/browser/run");
  const signed = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await signed.addCookies([{ name: "X-Api-Key", value: `${user}:${key}`, url: base }]);
  const page = await open(signed, "/request");
  await page.fill("#package", pkg);
  await page.fill("#trigger", `${pkg}/1.0-1`);
  await Promise.all([page.waitForURL(/\/request\.cgi\?/), page.click("#request-form button[type=submit]")]);
  assert.match(await page.locator("h1").textContent(), /Confirm the request/);
  assert.ok(await page.locator(`#to-request td a:text-is("${pkg}")`).count() >= 1, "the request is shown");
  await shot(page, "request-confirm");
  await Promise.all([page.waitForURL(/\/request\.cgi$/), page.click("#confirm-form button[type=submit]")]);
  assert.match(await page.locator("h1").textContent(), /Test requested/);
  assert.ok(await page.locator("#requested tbody tr").count() >= 1);
  await shot(page, "request-done");
  await page.close();
  await signed.close();
});

await check("no console errors, page errors or dialogs on any page", async () => {
  assert.deepEqual(problems, []);
});

await browser.close();
console.log(`${failures === 0 ? "all passed" : `${failures} failed`}; screenshots in ${shots}`);
process.exit(failures === 0 ? 0 : 1);
