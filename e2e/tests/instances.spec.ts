import { test, expect, type Page, type Locator, type APIRequestContext } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { apiLogin, login, shot, unique } from './helpers';

/*
 * Issue 16: a redundant gateway in the portal, against the real binaries. The spec starts a stack
 * of its own (`stack.sh PORT redundant`: a server with a 3-second lease and two --no-tun workers,
 * e2e-a on 127.0.0.1 in zone-a and e2e-b on 127.0.0.2 in zone-b, each with its own heartbeat
 * port), beside the suite's one-worker stack, and stops it at the end. A gateway created through
 * the portal runs as two instances, one active, "redundant"; a drain of the active instance's
 * worker from the workers view hands the gateway over to the other instance; an undrain moves
 * nothing back; a kill -9 of the (now) active worker fails the gateway over to the surviving
 * instance, which the page shows as "not redundant" with the reason once the lease ran out. The
 * instances view is checked in Japanese too.
 */

const PORT = Number(process.env.E2E_HA_PORT ?? 18091);
const BASE = `http://127.0.0.1:${PORT}`;
const WORKERS = ['e2e-a', 'e2e-b'];
const ZONES: Record<string, string> = { 'e2e-a': 'zone-a', 'e2e-b': 'zone-b' };
const ADDRESSES: Record<string, string> = { 'e2e-a': '127.0.0.1', 'e2e-b': '127.0.0.2' };

test.use({ baseURL: BASE });
test.describe.configure({ mode: 'serial' });

let stack: ChildProcess | undefined;
let stackLog = '';
const pidDir = mkdtempSync(path.join(tmpdir(), 'isthmus-e2e-ha-'));

function workerPid(name: string): number {
  return Number(readFileSync(path.join(pidDir, `${name}.pid`), 'utf8').trim());
}

test.beforeAll(async () => {
  stack = spawn('bash', [path.join(__dirname, '..', 'stack.sh'), String(PORT), 'redundant'], {
    env: { ...process.env, E2E_PID_DIR: pidDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stack.stdout?.on('data', (d) => (stackLog += d));
  stack.stderr?.on('data', (d) => (stackLog += d));
  await expect
    .poll(async () => {
      if (stack?.exitCode !== null) return `stack.sh exited: ${stackLog.slice(-2000)}`;
      try {
        const h = await (await fetch(`${BASE}/api/v1/health`)).json();
        return (h.workers ?? []).map((w: { name: string }) => w.name).sort().join(',');
      } catch {
        return 'not listening';
      }
    }, { timeout: 30_000, message: 'the redundant stack starts with both workers live' })
    .toBe(WORKERS.join(','));
});

test.afterAll(async () => {
  const s = stack;
  if (s && s.exitCode === null) {
    const done = new Promise((r) => s.once('exit', r));
    s.kill('SIGTERM');
    await done;
  }
  rmSync(pidDir, { recursive: true, force: true });
});

/** A tenant and a VNet with a GatewaySubnet, through the API (the gateway is made in the portal). */
async function tenantWithVnet(request: APIRequestContext): Promise<string> {
  await apiLogin(request);
  const tenant = unique('ha');
  for (const [url, data] of [
    ['/api/v1/tenants', { name: tenant }],
    [`/api/v1/tenants/${tenant}/vnets`, {
      name: 'hub',
      region: 'westeurope',
      address_space: ['10.1.0.0/16'],
      subnets: [{ name: 'GatewaySubnet', prefix: '10.1.255.0/27' }],
    }],
  ] as const) {
    const r = await request.post(url, { data });
    expect(r.ok(), `${url}: ${r.status()} ${await r.text()}`).toBeTruthy();
  }
  return tenant;
}

const instances = (page: Page) => page.getByTestId('instances');
const rows = (page: Page) => instances(page).getByTestId('instance-row');
const activeRow = (page: Page) => instances(page).locator('[data-testid="instance-row"][data-role="active"]');

/** The worker of the one active instance, or a note of how many are shown when not one. */
async function activeWorker(page: Page): Promise<string> {
  const workers = await activeRow(page).evaluateAll((rs) => rs.map((r) => r.getAttribute('data-worker') ?? ''));
  return workers.length === 1 ? workers[0] : `${workers.length} active instances`;
}

async function confirmDialog(page: Page, mustSay: RegExp[]) {
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  for (const m of mustSay) await expect(dialog).toContainText(m);
  return dialog;
}

/** Latin words in `el`'s visible text beyond names, addresses and the allowed terms. */
async function englishWords(el: Locator, names: string[]): Promise<string[]> {
  let text = await el.innerText();
  for (const n of [...names].sort((a, b) => b.length - a.length)) text = text.split(n).join(' ');
  text = text.replace(/\b\d+(\.\d+){3}(:\d+)?\b/g, ' ');
  const allowed = new Set(['VNet', 'WireGuard', 's']);
  return [...new Set((text.match(/[A-Za-z][A-Za-z0-9_-]*/g) ?? []).filter((w) => !allowed.has(w)))];
}

test('a gateway on two workers runs as two instances, hands over on a drain and fails over when its worker dies', async ({ page, request }) => {
  test.setTimeout(150_000);
  const tenant = await tenantWithVnet(request);
  await login(page, `/#/t/${tenant}/gateways/new`);

  // The gateway, through the portal.
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('hub-gw');
  await expect(page.getByRole('combobox', { name: 'Virtual network' })).toHaveValue('hub');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('table', { name: 'Gateways' }).getByRole('row').filter({ hasText: 'hub-gw' })).toBeVisible();
  await page.getByRole('link', { name: 'Edit hub-gw' }).click();
  await expect(page.getByRole('heading', { name: 'Edit gateway: hub-gw' })).toBeVisible();

  // Two instances on the two workers, one active, the other standing by: redundant.
  await expect(rows(page)).toHaveCount(2, { timeout: 20_000 });
  await expect(instances(page).getByTestId('redundancy')).toHaveAttribute('data-redundancy', 'redundant', { timeout: 20_000 });
  await expect(instances(page).getByTestId('redundancy')).toHaveText('redundant');
  await expect(instances(page).locator('[data-role="standby"]')).toHaveCount(1);
  await expect(activeRow(page)).toHaveCount(1);
  const first = await activeWorker(page);
  expect(WORKERS).toContain(first);
  const other = WORKERS.find((w) => w !== first) ?? '';
  expect(new Set(await rows(page).evaluateAll((rs) => rs.map((r) => r.getAttribute('data-worker'))))).toEqual(new Set(WORKERS));
  for (const w of WORKERS) {
    const row = instances(page).locator(`[data-testid="instance-row"][data-worker="${w}"]`);
    await expect(row).toContainText(ZONES[w]);
    // Each instance's endpoint is on its own worker's address.
    await expect(row).toContainText(`${ADDRESSES[w]}:548`);
  }
  // The gateway's endpoint is the active instance's, the standby's is the other one.
  await expect(page.getByTestId('public-endpoint')).toHaveText(new RegExp(`^${ADDRESSES[first]}:548\\d\\d$`));
  await expect(page.getByTestId('standby-endpoint')).toHaveText(new RegExp(`^${ADDRESSES[other]}:548\\d\\d$`));
  await expect(instances(page).getByTestId('active-instance')).toHaveText(new RegExp(`^Active: instance [01] on ${first}$`));
  // Both instances report, and hear each other.
  await expect(rows(page).filter({ hasText: 'not reported yet' })).toHaveCount(0, { timeout: 20_000 });
  await expect(rows(page).filter({ hasText: 'heard' }).filter({ hasNotText: 'not heard' })).toHaveCount(2, { timeout: 20_000 });
  await expect(instances(page).getByTestId('instances-help-failover')).toContainText('takes over');
  await shot(page, 'instances-redundant');

  // The instances view in Japanese: every word is the portal's Japanese.
  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(instances(page).getByRole('heading', { name: 'インスタンス' })).toBeVisible();
  await expect(instances(page).getByTestId('redundancy')).toHaveText('冗長化済み');
  await expect(activeRow(page).getByTestId('role')).toHaveText('アクティブ');
  await expect(instances(page).locator('[data-role="standby"]').getByTestId('role')).toHaveText('スタンバイ');
  await expect(instances(page).getByTestId('active-instance')).toHaveText(new RegExp(`^アクティブ: ${first} のインスタンス [01]$`));
  await expect(instances(page).getByTestId('instances-help-failover')).toContainText('引き継ぎます');
  expect(await englishWords(instances(page), [...WORKERS, ...Object.values(ZONES)])).toEqual([]);
  await shot(page, 'instances-redundant-ja');
  await page.getByRole('combobox', { name: '言語' }).selectOption('en');

  // Drain the active instance's worker from the workers view.
  await page.getByRole('link', { name: 'Dashboard' }).click();
  const workers = page.getByRole('table', { name: 'Workers and gateway instances' });
  const row = (w: string) => workers.locator(`[data-testid="worker-row"][data-worker="${w}"]`);
  for (const w of WORKERS) {
    await expect(row(w)).toContainText(ZONES[w]);
    await expect(row(w).getByTestId('worker-live')).toHaveText('yes');
    await expect(row(w).getByTestId('worker-draining')).toHaveText('no');
  }
  await expect(row(first).getByTestId('worker-active')).toHaveText('1', { timeout: 15_000 });
  await expect(row(other).getByTestId('worker-standby')).toHaveText('1', { timeout: 15_000 });
  await page.getByRole('button', { name: `Drain ${first}` }).click();
  const dialog = await confirmDialog(page, [new RegExp(first), /standby/, /can be stopped/, /nothing moves back/]);
  await shot(page, 'instances-drain-confirm');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(row(first)).toHaveAttribute('data-draining', 'true');
  await expect(row(first).getByTestId('worker-draining')).toHaveText('yes');
  // The handover: the drained worker runs no active instance any more.
  await expect(row(first).getByTestId('worker-active')).toHaveText('0', { timeout: 20_000 });
  await expect(row(other).getByTestId('worker-active')).toHaveText('1', { timeout: 20_000 });
  await shot(page, 'instances-drained');

  // The gateway page shows the other instance active.
  await page.goto(`/#/t/${tenant}/gateways/hub-gw/edit`);
  await expect.poll(() => activeWorker(page), { timeout: 20_000 }).toBe(other);
  await expect(instances(page).getByTestId('active-instance')).toContainText(`on ${other}`);
  await expect(page.getByTestId('public-endpoint')).toHaveText(new RegExp(`^${ADDRESSES[other]}:548\\d\\d$`), { timeout: 10_000 });

  // Undrain: the worker is eligible again, nothing moves back.
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await page.getByRole('button', { name: `Undrain ${first}` }).click();
  await (await confirmDialog(page, [new RegExp(first), /stay where they are/])).getByRole('button', { name: 'Confirm' }).click();
  await expect(row(first)).toHaveAttribute('data-draining', 'false');
  await expect(page.getByRole('button', { name: `Drain ${first}` })).toBeVisible();
  await page.goto(`/#/t/${tenant}/gateways/hub-gw/edit`);
  await expect(rows(page)).toHaveCount(2, { timeout: 20_000 });
  await expect.poll(() => activeWorker(page)).toBe(other);

  // kill -9 of the active instance's worker: the surviving instance takes over, and once the
  // lease (3 s) ran out the gateway is not redundant, saying why.
  process.kill(workerPid(other), 'SIGKILL');
  // (At first the survivor may say only that it hears no partner; once the lease ran out the
  // server knows the worker is gone.)
  const badge = instances(page).getByTestId('redundancy');
  await expect(badge).toHaveAttribute('data-redundancy', 'not_redundant', { timeout: 30_000 });
  await expect.poll(() => activeWorker(page), { timeout: 30_000 }).toBe(first);
  const expected: Record<string, string> = {
    one_live_worker: 'only one live worker can run it',
    standby_worker_down: "the standby's worker is down",
  };
  await expect(badge).toHaveAttribute('data-reason', /^(one_live_worker|standby_worker_down)$/, { timeout: 30_000 });
  const reason = (await badge.getAttribute('data-reason')) ?? '';
  await expect(badge).toContainText(`not redundant: ${expected[reason]}`);
  // The gateway's endpoint followed the surviving instance while the page stayed open.
  await expect(page.getByTestId('public-endpoint')).toHaveText(new RegExp(`^${ADDRESSES[first]}:548\\d\\d$`), { timeout: 10_000 });
  await shot(page, 'instances-failed-over');

  // The same in Japanese.
  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(badge).toContainText('冗長化されていません: ');
  await expect(activeRow(page).getByTestId('role')).toHaveText('アクティブ');
  expect(await englishWords(instances(page), [...WORKERS, ...Object.values(ZONES)])).toEqual([]);
  await shot(page, 'instances-failed-over-ja');

  // The dashboard's workers view says the killed worker is not live.
  await page.getByRole('link', { name: 'ダッシュボード' }).click();
  const workersJa = page.getByRole('table', { name: 'ワーカーとゲートウェイ インスタンス' });
  await expect(workersJa.locator(`[data-worker="${other}"]`).getByTestId('worker-live')).toHaveText('いいえ', { timeout: 15_000 });
  await expect(workersJa.locator(`[data-worker="${first}"]`).getByTestId('worker-live')).toHaveText('はい');
  expect(await englishWords(page.getByTestId('workers-admin'), [...WORKERS, ...Object.values(ZONES)])).toEqual([]);
  await shot(page, 'instances-workers-ja');
});
