import { test, expect, type Page } from '@playwright/test';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ADMIN, shot, wgKey } from './helpers';

/*
 * Issue 12, a first try as a new user would make it, in Japanese: from an empty database, through
 * the forms only, a VNet, a gateway, a site and a connection. While the worker states a loopback
 * address the connection page warns that no device can reach the gateway (GW-10) and names the
 * option that sets the real address; once the worker states a real one, the warning is gone.
 *
 * The spec runs its own server (fresh SQLite) and worker, beside the suite's shared stack: its
 * gateway ports are another range, so the two workers never compete for a UDP port. The "real"
 * address is one the test gives a veth interface of its own inside the suite's network
 * namespace (no default route there); nothing is ever sent to it.
 */

const root = path.resolve(__dirname, '..', '..');
const bin = process.env.ISTHMUS_BIN_DIR ?? path.join(root, 'target', 'debug');
const PORT = Number(process.env.E2E_FIRST_TRY_PORT ?? 18097);
const BASE = `http://127.0.0.1:${PORT}`;
const VETH = 'isth-e2e-pub';
const VETH_PEER = 'isth-e2e-peer';
const REAL_ADDRESS = '10.203.0.1';

function ip(...args: string[]) {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function hasDefaultRoute(): boolean {
  return execFileSync('ip', ['route', 'show', 'default']).toString().trim() !== '';
}

/** The environment without settings of a server or worker the caller may have exported. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('ISTHMUS_') || k === 'DATABASE_URL') delete env[k];
  }
  return env;
}

class Stack {
  server?: ChildProcess;
  worker?: ChildProcess;
  readonly data = mkdtempSync(path.join(tmpdir(), 'isthmus-first-try-'));
  readonly token = `isw_e2e_${randomBytes(16).toString('hex')}`;

  async startServer() {
    this.server = spawn(
      path.join(bin, 'isthmus'),
      ['--data-dir', this.data, '--gateway-ports', '53820-53899', 'serve', '--listen', `127.0.0.1:${PORT}`, '--portal-dir', path.join(root, 'dist')],
      { env: { ...cleanEnv(), ISTHMUS_ADMIN_PASSWORD: ADMIN.password, ISTHMUS_WORKER_TOKEN: this.token }, stdio: 'inherit' },
    );
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`${BASE}/api/v1/health`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the server did not start');
  }

  /** (Re)starts the worker, stating `address` as its public address. */
  async startWorker(address: string) {
    await this.stopWorker();
    this.worker = spawn(
      path.join(bin, 'isthmus-worker'),
      ['--server', BASE, '--name', 'first-try-worker', '--no-tun', '--public-address', address],
      { env: { ...cleanEnv(), ISTHMUS_WORKER_TOKEN: this.token }, stdio: 'inherit' },
    );
    // Connected once the health page lists it with the address stated.
    await expect
      .poll(async () => {
        const h = await (await fetch(`${BASE}/api/v1/health`)).json();
        return (h.workers ?? []).length;
      }, { timeout: 20_000 })
      .toBeGreaterThan(0);
  }

  async stopWorker() {
    const w = this.worker;
    this.worker = undefined;
    if (w && w.exitCode === null) {
      const done = new Promise((r) => w.once('exit', r));
      w.kill('SIGTERM');
      await done;
    }
  }

  async stop() {
    await this.stopWorker();
    if (this.server && this.server.exitCode === null) {
      const s = this.server;
      const done = new Promise((r) => s.once('exit', r));
      s.kill('SIGTERM');
      await done;
    }
    rmSync(this.data, { recursive: true, force: true });
  }
}

async function loginJa(page: Page) {
  await page.goto(`${BASE}/`);
  await page.getByRole('textbox', { name: 'Username' }).fill(ADMIN.username);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(page.locator('html')).toHaveAttribute('lang', 'ja');
  await expect(page.getByRole('button', { name: 'ログアウト' })).toBeVisible();
}

test('初めての利用: 空のデータベースからフォームだけで接続を作り、エンドポイントの警告が正しく出る', async ({ page }) => {
  test.setTimeout(180_000);
  test.skip(process.getuid?.() !== 0, 'needs root to give a veth of its own a non-loopback address (run through scripts/test.sh)');
  test.skip(hasDefaultRoute(), 'runs only in a network namespace without a default route (scripts/test.sh makes one)');
  const stack = new Stack();
  try {
    await stack.startServer();
    // A loopback address: what a worker states when nobody told it the real one.
    await stack.startWorker('127.0.0.1');
    await loginJa(page);
    const nav = page.getByRole('navigation', { name: 'メイン' });

    // The database is empty: no tenant yet.
    await page.getByRole('textbox', { name: 'テナント名' }).fill('first');
    await page.getByRole('button', { name: 'テナントを作成' }).click();
    await expect(page.getByRole('combobox', { name: 'テナント', exact: true })).toHaveValue('first');

    // VNet with a GatewaySubnet
    await nav.getByRole('link', { name: '仮想ネットワーク' }).click();
    await page.getByRole('link', { name: '仮想ネットワークの作成' }).click();
    await page.getByRole('textbox', { name: '名前', exact: true }).fill('hub');
    await page.getByRole('textbox', { name: 'アドレス空間' }).fill('10.60.0.0/16');
    await expect(page.getByRole('textbox', { name: 'サブネット 1 名前' })).toHaveValue('GatewaySubnet');
    await page.getByRole('textbox', { name: 'サブネット 1 プレフィックス' }).fill('10.60.255.0/27');
    await page.getByRole('button', { name: '保存' }).click();
    await expect(page.getByRole('table', { name: '仮想ネットワーク' }).getByRole('row').filter({ hasText: 'hub' })).toBeVisible();

    // Gateway (MSS clamping on by default)
    await nav.getByRole('link', { name: 'ゲートウェイ' }).click();
    await page.getByRole('link', { name: 'ゲートウェイの作成' }).click();
    await page.getByRole('textbox', { name: '名前', exact: true }).fill('hub-gw');
    await expect(page.getByRole('combobox', { name: '仮想ネットワーク' })).toHaveValue('hub');
    await page.getByRole('combobox', { name: 'ゲートウェイの種類' }).selectOption('RouteBased');
    await expect(page.getByRole('checkbox', { name: /TCP MSS/ })).toBeChecked();
    await page.getByRole('button', { name: '保存' }).click();
    const gwRow = page.getByRole('table', { name: 'ゲートウェイ' }).getByRole('row').filter({ hasText: 'hub-gw' });
    await expect(gwRow).toContainText('127.0.0.1:538');
    // The gateway list warns too.
    await expect(page.getByTestId('endpoint-warning')).toContainText('hub-gw');
    await shot(page, 'first-try-gateways-loopback');

    // Site
    await nav.getByRole('link', { name: 'ローカル ネットワーク サイト' }).click();
    await page.getByRole('link', { name: 'ローカル ネットワーク サイトの作成' }).click();
    await page.getByRole('textbox', { name: '名前', exact: true }).fill('branch');
    await page.getByRole('textbox', { name: 'VPN デバイスのアドレス' }).fill('203.0.113.60');
    await page.getByRole('textbox', { name: 'アドレス プレフィックス' }).fill('192.168.60.0/24');
    await page.getByRole('textbox', { name: 'デバイスの公開鍵' }).fill(wgKey());
    await page.getByRole('button', { name: '保存' }).click();
    await expect(page.getByRole('table', { name: 'ローカル ネットワーク サイト' }).getByRole('row').filter({ hasText: 'branch' })).toBeVisible();

    // Connection
    await nav.getByRole('link', { name: '接続', exact: true }).click();
    await page.getByRole('link', { name: '接続の作成' }).click();
    await page.getByRole('textbox', { name: '名前', exact: true }).fill('hub-branch');
    await expect(page.getByRole('combobox', { name: 'ゲートウェイ' })).toHaveValue('hub-gw');
    await page.getByRole('combobox', { name: '接続の種類' }).selectOption('SiteToSite');
    await expect(page.getByRole('combobox', { name: 'サイト' })).toHaveValue('branch');
    await page.getByRole('button', { name: '保存' }).click();

    // The connection page: the device configuration names a loopback endpoint, and says so.
    await expect(page.getByRole('heading', { name: '接続: hub-branch' })).toBeVisible();
    const device = page.getByRole('region', { name: 'デバイス構成' });
    const warning = device.getByTestId('endpoint-warning');
    await expect(warning).toBeVisible();
    await expect(warning).toContainText('ループバック');
    await expect(warning).toContainText('isthmus-worker --public-address');
    await expect(device.getByRole('link', { name: 'デバイス構成をダウンロード (wg-quick)' })).toBeVisible();
    await shot(page, 'first-try-connection-loopback');

    // The worker is restarted with a real address of its host: the endpoint follows, the
    // warning goes.
    ip('link', 'add', VETH, 'type', 'veth', 'peer', 'name', VETH_PEER);
    ip('addr', 'add', `${REAL_ADDRESS}/24`, 'dev', VETH);
    await stack.startWorker(REAL_ADDRESS);
    await expect
      .poll(async () => {
        const r = await page.request.get(`${BASE}/api/v1/tenants/first/gateways/hub-gw`);
        return (await r.json()).public_endpoint as string;
      }, { timeout: 30_000 })
      .toMatch(new RegExp(`^${REAL_ADDRESS.replace(/\./g, '\\.')}:538\\d\\d$`));
    await page.reload();
    await expect(page.getByRole('heading', { name: '接続: hub-branch' })).toBeVisible();
    await expect(page.getByRole('region', { name: 'デバイス構成' }).getByRole('link', { name: 'デバイス構成をダウンロード (wg-quick)' })).toBeVisible();
    await expect(page.getByTestId('endpoint-warning')).toHaveCount(0);
    const conf = await (await page.request.get(`${BASE}/api/v1/tenants/first/connections/hub-branch/device-config`)).text();
    expect(conf).toContain(`Endpoint = ${REAL_ADDRESS}:538`);
    expect(conf).not.toContain('WARNING');
    await shot(page, 'first-try-connection-real-address');
    await nav.getByRole('link', { name: 'ゲートウェイ' }).click();
    await expect(page.getByRole('table', { name: 'ゲートウェイ' }).getByRole('row').filter({ hasText: 'hub-gw' })).toContainText(`${REAL_ADDRESS}:538`);
    await expect(page.getByTestId('endpoint-warning')).toHaveCount(0);
  } finally {
    await stack.stop();
    try {
      ip('link', 'del', VETH);
    } catch {
      // never created
    }
  }
});
