import { expect, type APIRequestContext, type Page } from '@playwright/test';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSocket } from 'node:dgram';

export const ADMIN = { username: 'admin', password: process.env.E2E_ADMIN_PASSWORD ?? 'e2e-admin-password' };

/** A name no other test uses (tests share one server). */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** A random WireGuard public key (32 bytes, base64). */
export function wgKey(): string {
  return randomBytes(32).toString('base64');
}

/** Logs in through the form. */
export async function login(page: Page, path = '/') {
  await page.goto(path);
  await page.getByRole('textbox', { name: 'Username' }).fill(ADMIN.username);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
}

/** Logs the API context in (its own cookie jar). */
export async function apiLogin(request: APIRequestContext) {
  const r = await request.post('/api/v1/auth/login', { data: ADMIN });
  expect(r.ok(), await r.text()).toBeTruthy();
}

async function post(request: APIRequestContext, url: string, data: unknown) {
  const r = await request.post(url, { data });
  expect(r.ok(), `${url}: ${r.status()} ${await r.text()}`).toBeTruthy();
  return r.json();
}

export interface Seed {
  tenant: string;
  vnet: string;
  gateway: string;
  site?: string;
  connection?: string;
}

/**
 * Seeds through the REST API: a tenant, a VNet 10.1.0.0/16 with a /27 GatewaySubnet, a gateway
 * of `type`, and (with `site`) a site 192.168.10.0/24 connected site-to-site.
 */
export async function seed(
  request: APIRequestContext,
  opts: { type?: 'RouteBased' | 'PolicyBased'; site?: boolean } = {},
): Promise<Seed> {
  await apiLogin(request);
  const tenant = unique('t');
  const s: Seed = { tenant, vnet: 'hub', gateway: 'hub-gw' };
  await post(request, '/api/v1/tenants', { name: tenant });
  const base = `/api/v1/tenants/${tenant}`;
  await post(request, `${base}/vnets`, {
    name: s.vnet,
    region: 'westeurope',
    address_space: ['10.1.0.0/16'],
    subnets: [
      { name: 'GatewaySubnet', prefix: '10.1.255.0/27' },
      { name: 'workloads', prefix: '10.1.1.0/24' },
    ],
  });
  await post(request, `${base}/gateways`, {
    name: s.gateway,
    vnet: s.vnet,
    gateway_type: opts.type ?? 'RouteBased',
    sku: 'VpnGw1',
  });
  if (opts.site) {
    s.site = 'branch';
    s.connection = 'hub-branch';
    await post(request, `${base}/sites`, {
      name: s.site,
      device_host: '203.0.113.10',
      address_prefixes: ['192.168.10.0/24'],
      device_public_key: wgKey(),
    });
    await post(request, `${base}/connections`, {
      name: s.connection,
      gateway: s.gateway,
      kind: { type: 'SiteToSite', site: s.site },
    });
  }
  return s;
}

/** Logs in and opens a tenant's page (`#/t/{tenant}/...`). */
export async function openTenantPage(page: Page, tenant: string, rest: string) {
  await login(page, `/#/t/${encodeURIComponent(tenant)}/${rest}`);
}

export async function shot(page: Page, name: string) {
  await page.screenshot({ path: `test-results/${name}.png`, fullPage: true });
}

/** True when the tests run as root (needed to create interfaces, addresses and routes). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** True when this network namespace has a default route (scripts/test.sh runs in one without). */
export function hasDefaultRoute(): boolean {
  return execFileSync('ip', ['route', 'show', 'default']).toString().trim() !== '';
}

/** The keys of a `wg-quick` file that `wg setconf` does not take (what `wg-quick strip` drops). */
const WG_QUICK_ONLY = new Set(['address', 'dns', 'mtu', 'table', 'preup', 'postup', 'predown', 'postdown', 'saveconfig']);

/** A `wg-quick` file read as `wg-quick` reads it: its key = value lines, comments dropped. */
function wgQuickLines(conf: string): { key: string; value: string; line: string }[] {
  return conf.split('\n').map((line) => {
    const bare = line.replace(/#.*$/, '').trim();
    const eq = bare.indexOf('=');
    return eq < 0
      ? { key: bare.toLowerCase(), value: '', line }
      : { key: bare.slice(0, eq).trim().toLowerCase(), value: bare.slice(eq + 1).trim(), line };
  });
}

/**
 * A site's VPN device on this host, as an operator would set one up from the configuration the
 * portal exports: `wireguard-go` with its own key pair, configured with the exported file (the
 * private-key placeholder filled in, the wg-quick-only keys applied as wg-quick applies them),
 * the site-side address, and a route per AllowedIPs entry. The routes go into a table of the
 * device's own, chosen by the source address (wg-quick's `Table =` and an `ip rule`), so two
 * devices of one host may route the same prefixes each into their own tunnel.
 */
export class SiteDevice {
  readonly privateKey: string;
  readonly publicKey: string;
  readonly ifname: string;
  readonly table: number;
  private process?: ChildProcess;
  private log = '';
  private ruleAdded = false;
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'isthmus-site-device-'));

  /** `address`: the device's own address in the site's prefixes (the source of its traffic). */
  constructor(readonly address: string) {
    this.privateKey = execFileSync('wg', ['genkey']).toString().trim();
    this.publicKey = execFileSync('wg', ['pubkey'], { input: this.privateKey }).toString().trim();
    // Interface names have at most 15 characters.
    this.ifname = `isd${randomBytes(4).toString('hex')}`;
    this.table = 20_000 + randomBytes(2).readUInt16BE() % 20_000;
  }

  /** Starts the device from the exported `wg-quick` configuration `conf`. */
  async start(conf: string) {
    const lines = wgQuickLines(conf);
    const allowed = lines.filter((l) => l.key === 'allowedips').flatMap((l) => l.value.split(',').map((s) => s.trim()).filter(Boolean));
    const mtu = lines.find((l) => l.key === 'mtu')?.value;
    const stripped = lines
      .filter((l) => !WG_QUICK_ONLY.has(l.key))
      .map((l) => (l.key === 'privatekey' ? `PrivateKey = ${this.privateKey}` : l.line))
      .join('\n');
    const file = path.join(this.dir, `${this.ifname}.conf`);
    writeFileSync(file, stripped, { mode: 0o600 });

    const p = spawn('wireguard-go', ['-f', this.ifname], { env: { ...process.env, LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = p;
    p.stdout?.on('data', (d) => (this.log += d));
    p.stderr?.on('data', (d) => (this.log += d));
    await expect
      .poll(() => {
        try {
          execFileSync('wg', ['show', this.ifname], { stdio: 'pipe' });
          return true;
        } catch {
          return p.exitCode === null ? false : `wireguard-go exited: ${this.log}`;
        }
      }, { timeout: 10_000, message: `wireguard-go ${this.ifname} starts` })
      .toBe(true);
    run('wg', 'setconf', this.ifname, file);
    run('ip', 'address', 'add', `${this.address}/32`, 'dev', this.ifname);
    run('ip', 'link', 'set', this.ifname, ...(mtu ? ['mtu', mtu] : []), 'up');
    // The site device's own routes to its AllowedIPs, in a table of the device's (wg-quick's
    // `Table =`): what the device does, never a route on the worker's behalf (the e2e worker
    // runs --no-tun and has no VNet-side routes to own).
    for (const prefix of allowed) {
      run('ip', 'route', 'add', prefix, 'dev', this.ifname, 'table', String(this.table));
    }
    run('ip', 'rule', 'add', 'from', this.address, 'lookup', String(this.table));
    this.ruleAdded = true;
  }

  /**
   * Sends `count` ICMP echo requests of `size` payload bytes every `interval` seconds from the
   * device's address to `dst` (no answer is needed: the gateways count what they forward).
   */
  ping(dst: string, count: number, interval: number, size: number): ChildProcess {
    return spawn('ping', ['-n', '-q', '-c', String(count), '-i', String(interval), '-s', String(size), '-I', this.address, dst], { stdio: 'ignore' });
  }

  /** Stops the device and removes its interface (and with it its routes), its rule and files. */
  async stop() {
    if (this.ruleAdded) {
      tryCmd('ip', 'rule', 'del', 'from', this.address, 'lookup', String(this.table));
    }
    const p = this.process;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await done;
    }
    tryCmd('ip', 'link', 'del', this.ifname);
    tryCmd('ip', 'route', 'flush', 'table', String(this.table));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function run(cmd: string, ...args: string[]) {
  execFileSync(cmd, args, { stdio: 'pipe' });
}

function tryCmd(cmd: string, ...args: string[]) {
  try {
    execFileSync(cmd, args, { stdio: 'pipe' });
  } catch {
    // already gone
  }
}

/** A UDP port nothing on this host listens on, outside the gateways' range (51820-52819). */
export async function freeUdpPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 55_000 + randomBytes(2).readUInt16BE() % 5_000;
    const free = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free UDP port in 55000-59999');
}
