import { expect, type APIRequestContext, type Page } from '@playwright/test';
import { randomBytes } from 'node:crypto';

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
