// The dashboard in a real browser (issue 9): playwright-core drives Debian's /usr/bin/chromium
// headless (never a downloaded browser) against a dashboard that test_dashboard_browser (C)
// runs with a worker and a few instances. It finds them in the list by filter, opens one and
// checks the timeline's bars against the history, terminates one from the page and sees its
// status change live (server-sent events, no reload), and takes a screenshot of each view.
//
//   node dashboard_browser.mjs URL PREFIX IMG_DIR
// PREFIX names the instances: PREFIX tour (completed: activity, timer, sub-orchestration, event
// wait; its child's ID starts with the tour's), PREFIX wait-1 / -2 / -3 (running, waiting for
// event "never"), PREFIX fail (failed).
// Exit status 0 when every check passed; a failure prints what differed.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [url, prefix, imgDir] = process.argv.slice(2);
if (!url || !prefix || !imgDir) {
  console.error('usage: node dashboard_browser.mjs URL PREFIX IMG_DIR');
  process.exit(2);
}
const chromiumPath = process.env.DT_CHROMIUM || '/usr/bin/chromium';
const ids = {
  tour: `${prefix}tour`, wait1: `${prefix}wait-1`, wait2: `${prefix}wait-2`, wait3: `${prefix}wait-3`, fail: `${prefix}fail`,
};

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function shot(page, name) {
  mkdirSync(imgDir, { recursive: true });
  await page.screenshot({ path: join(imgDir, name), fullPage: true });
}

async function api(page, path, method = 'GET') {
  return page.evaluate(async ([p, m]) => (await fetch(p, { method: m })).json(), [path, method]);
}

// The bars the history implies: activities, timers and sub-orchestrations from their start
// event (event_id) to their outcome (task_id).
function expectedBars(events) {
  const kinds = {
    TaskScheduled: ['activity', 'start'], TaskCompleted: ['activity', 'end'], TaskFailed: ['activity', 'end'],
    TimerCreated: ['timer', 'start'], TimerFired: ['timer', 'end'],
    SubOrchestrationInstanceCreated: ['suborchestration', 'start'],
    SubOrchestrationInstanceCompleted: ['suborchestration', 'end'], SubOrchestrationInstanceFailed: ['suborchestration', 'end'],
  };
  const bars = new Map();
  for (const e of events) {
    const k = kinds[e.type];
    if (!k) continue;
    const key = `${k[0]}:${k[1] === 'start' ? e.event_id : e.task_id}`;
    const b = bars.get(key) || { kind: k[0], taskId: k[1] === 'start' ? e.event_id : e.task_id };
    b[k[1]] = e.timestamp_ms;
    bars.set(key, b);
  }
  return [...bars.values()];
}

async function main() {
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => { console.error(`page error: ${e.message}`); process.exitCode = 1; });
  try {
    // Overview.
    await page.goto(`${url}/#/`);
    await page.waitForSelector('#status-counts');
    await page.waitForSelector('#workers');
    await page.waitForSelector('.live.on');
    check((await page.locator('#workers tr').count()) >= 2, 'the overview lists a worker');
    check((await page.locator('#backlog tr').count()) >= 4, 'the overview lists the queues');
    await shot(page, 'dashboard-overview.png');

    // The list, filtered by ID prefix and name through the form.
    await page.goto(`${url}/#/instances`);
    await page.waitForSelector('#filters');
    await page.fill('#f-prefix', prefix);
    await page.fill('#f-name', 'dash_wait');
    await page.click('#f-apply');
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.includes('of 3'));
    const waitRows = await page.locator('#instances tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id).sort());
    check(JSON.stringify(waitRows) === JSON.stringify([ids.wait1, ids.wait2, ids.wait3].sort()), `name filter rows ${waitRows}`);
    await page.fill('#f-name', '');
    await page.selectOption('#f-status', ['COMPLETED', 'FAILED']);
    await page.click('#f-apply');
    // The tour's sub-orchestration has an ID that starts with the tour's: three match.
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.includes('of 3'));
    const doneRows = await page.locator('#instances tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id).sort());
    check(doneRows.length === 3 && doneRows.includes(ids.fail) && doneRows.includes(ids.tour) &&
      doneRows.some((r) => r.startsWith(`${ids.tour}:`)), `status filter rows ${doneRows}`);
    check(page.url().includes('status=COMPLETED%2CFAILED') || page.url().includes('status=COMPLETED,FAILED'), 'filters are in the URL');
    await page.goto(`${url}/#/instances?prefix=${encodeURIComponent(prefix)}&sort=id`);
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.includes('of 6'));
    await shot(page, 'dashboard-list.png');

    // Paging: two per page, the second page, back.
    await page.goto(`${url}/#/instances?prefix=${encodeURIComponent(prefix)}&sort=id&limit=2`);
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.startsWith('1–2 of 6'));
    await page.click('#next');
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.startsWith('3–4 of 6'));
    const second = await page.locator('#instances tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id));
    check(second.length === 2 && second[0].startsWith(ids.tour), `the second page ${second}`);
    await page.click('#prev');
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.startsWith('1–2 of 6'));
    await page.goto(`${url}/#/instances?prefix=${encodeURIComponent(prefix)}&sort=id`);
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.includes('of 6'));

    // Sorting by a column header: by name, descending on the second click.
    await page.click('#instances th[data-sort="name"]');
    await page.waitForFunction(() => location.hash.includes('sort=name'));
    await page.waitForFunction(() => document.querySelector('#instances tr[data-id] td:nth-child(2)')?.textContent === 'dash_child');
    await page.click('#instances th[data-sort="name"]');
    await page.waitForFunction(() => location.hash.includes('sort=-name'));
    await page.waitForFunction(() => document.querySelector('#instances tr[data-id] td:nth-child(2)')?.textContent === 'dash_wait');
    await page.goto(`${url}/#/instances?prefix=${encodeURIComponent(prefix)}&sort=id`);
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent.includes('of 6'));

    // Open the tour from the list; its timeline against its history.
    await page.click(`#instances a:text-is("${ids.tour}")`);
    await page.waitForSelector('#timeline');
    check(decodeURIComponent(page.url()).endsWith(`#/instances/${ids.tour}`), 'deep link in the URL');
    const hist = await api(page, `/api/instances/${encodeURIComponent(ids.tour)}/history`);
    const want = expectedBars(hist.events);
    check(want.filter((b) => b.kind === 'activity').length >= 1 && want.some((b) => b.kind === 'timer') &&
      want.some((b) => b.kind === 'suborchestration'), 'the history has an activity, a timer and a sub-orchestration');
    const got = await page.locator('#timeline .bar[data-kind]').evaluateAll((bs) => bs.map((b) => ({ ...b.dataset })));
    for (const b of want) {
      const g = got.find((x) => x.kind === b.kind && Number(x.taskId) === b.taskId);
      check(g, `a ${b.kind} bar for task ${b.taskId}`);
      check(Number(g.startMs) === b.start && Number(g.endMs) === b.end && Number(g.durationMs) === b.end - b.start,
        `${b.kind} bar ${b.taskId}: ${g.startMs}..${g.endMs} (${g.durationMs} ms), history ${b.start}..${b.end}`);
      check(g.open === 'false', `${b.kind} bar ${b.taskId} is closed`);
    }
    const raised = hist.events.find((e) => e.type === 'EventRaised' && e.name === 'go');
    const wait = got.find((x) => x.kind === 'wait');
    check(raised && wait && Number(wait.endMs) === raised.timestamp_ms, 'the wait for "go" ends when it was raised');
    check((await page.locator('#events tr').count()) === hist.events.length + 1, 'every raw event is listed');
    check((await page.locator('#children a').count()) === 1, 'the child is linked');
    check((await page.locator('#output').textContent()).includes('toured'), 'the output is shown');
    await shot(page, 'dashboard-detail.png');

    // The child's page links back to its parent.
    await page.click('#children a');
    await page.waitForFunction((id) => document.querySelector('#parent a')?.textContent === id, ids.tour);
    check((await page.locator('#name').textContent()) === 'dash_child', 'the child page shows the child');

    // The failed instance: its failure chain.
    await page.goto(`${url}/#/instances/${encodeURIComponent(ids.fail)}`);
    await page.waitForSelector('#failure');
    check((await page.locator('#failure li').count()) === 2, 'the failure chain has the task failure and its cause');
    check((await page.locator('#failure').textContent()).includes('BoomError'), 'the inner failure is shown');

    // Terminate wait-1 from its page: the status changes live, the page is never reloaded.
    await page.goto(`${url}/#/instances/${encodeURIComponent(ids.wait1)}`);
    await page.waitForSelector('#a-terminate:not([disabled])');
    await page.waitForSelector('.live.on');
    await page.evaluate(() => {
      window.__noReload = true;
      window.__seen = [];
      window.addEventListener('dt-status', (e) => window.__seen.push(e.detail));
    });
    check((await page.locator('#status').textContent()).includes('RUNNING'), 'wait-1 runs');
    await page.fill('#a-reason', 'stopped from the browser test');
    await page.click('#a-terminate');
    await page.waitForSelector('#action-ok');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.includes('TERMINATED'), null, { timeout: 20000 });
    const seen = await page.evaluate((id) => window.__seen.filter((d) => d.instance_id === id).map((d) => d.runtime_status), ids.wait1);
    check(seen.includes('TERMINATED'), `the change came through the event stream (${seen})`);
    check(await page.evaluate(() => window.__noReload === true), 'no reload');
    await page.waitForFunction(() => document.querySelector('#output')?.textContent.includes('stopped from the browser test'));
    await shot(page, 'dashboard-terminated.png');

    // Suspend, resume and raise from the page (wait-2 completes on its event).
    const statusIs = (st) => page.waitForFunction((x) => document.querySelector('#status')?.textContent.includes(x), st, { timeout: 20000 });
    await page.goto(`${url}/#/instances/${encodeURIComponent(ids.wait2)}`);
    await page.waitForSelector('#a-suspend:not([disabled])');
    await page.click('#a-suspend');
    await statusIs('SUSPENDED');
    await page.click('#a-resume');
    await statusIs('RUNNING');
    await page.fill('#a-event', 'never');
    await page.fill('#a-data', '{"from": "browser"}');
    await page.click('#a-raise');
    await statusIs('COMPLETED');
    const raisedEv = (await api(page, `/api/instances/${encodeURIComponent(ids.wait2)}/history`)).events.find((e) => e.type === 'EventRaised');
    check(raisedEv && JSON.parse(raisedEv.payload).from === 'browser', 'the raised event carries its data');

    // Purge the failed instance from its page (after the confirmation).
    page.once('dialog', (d) => d.accept());
    await page.goto(`${url}/#/instances/${encodeURIComponent(ids.fail)}`);
    await page.waitForSelector('#a-purge:not([disabled])');
    await page.click('#a-purge');
    await page.waitForFunction(() => location.hash.startsWith('#/instances') && !location.hash.includes('/instances/'));
    const gone = await page.evaluate(async (p) => (await fetch(p)).status, `/api/instances/${encodeURIComponent(ids.fail)}`);
    check(gone === 404, `the purged instance is gone (${gone})`);

    // The list follows too: wait-3 terminated elsewhere changes its row in place.
    await page.goto(`${url}/#/instances?prefix=${encodeURIComponent(prefix)}&sort=id`);
    await page.waitForSelector(`#instances tr[data-id="${ids.wait3}"] .badge`);
    await page.evaluate(() => { window.__noReload = true; });
    await api(page, `/api/instances/${encodeURIComponent(ids.wait3)}/terminate`, 'POST');
    await page.waitForFunction((id) => document.querySelector(`#instances tr[data-id="${id}"] .status`)?.textContent.includes('TERMINATED'), ids.wait3, { timeout: 20000 });
    check(await page.evaluate(() => window.__noReload === true), 'no reload of the list');
  } catch (e) {
    // What the page showed when a check failed.
    console.error(`at ${page.url()}: ${(await page.locator('#view').textContent().catch(() => '?')).slice(0, 2000)}`);
    await shot(page, '../../build-failure.png').catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main().then(() => {
  if (!process.exitCode) console.log('dashboard_browser: all checks passed');
}).catch((e) => {
  console.error(`dashboard_browser: ${e.stack || e.message}`);
  process.exit(1);
});
