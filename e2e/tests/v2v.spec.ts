import { test, expect, type Page } from '@playwright/test';
import { openTenantPage, seed, shot } from './helpers';

/**
 * Both gateways live on the e2e worker (endpoints on 127.0.0.1), so the two halves of a
 * VNet-to-VNet pair really handshake with each other: the diagram must turn them "up" from the
 * worker's status reports, without a reload. Disabling a half turns it "disabled".
 */
test('VNet-to-VNet through the forms: both halves come up live in the diagram, the dashboard meters the region pair, a disabled half shows disabled', async ({ page, request }) => {
  test.setTimeout(150_000);
  const s = await seed(request);
  const base = `/api/v1/tenants/${s.tenant}`;
  for (const [url, data] of [
    [`${base}/vnets`, {
      name: 'spoke', region: 'japaneast', address_space: ['10.2.0.0/16'],
      subnets: [{ name: 'GatewaySubnet', prefix: '10.2.255.0/27' }],
    }],
    [`${base}/gateways`, { name: 'spoke-gw', vnet: 'spoke', gateway_type: 'RouteBased', sku: 'VpnGw1' }],
  ] as const) {
    const r = await request.post(url, { data });
    expect(r.ok(), `${url}: ${await r.text()}`).toBeTruthy();
  }

  const go = (rest: string) => page.goto(`/#/t/${encodeURIComponent(s.tenant)}/${rest}`);
  await openTenantPage(page, s.tenant, 'connections');
  async function newV2v(name: string, gateway: string, remote: string) {
    await go('connections/new');
    await page.getByRole('textbox', { name: 'Name', exact: true }).fill(name);
    await page.getByRole('combobox', { name: 'Gateway', exact: true }).selectOption(gateway);
    await page.getByRole('combobox', { name: 'Connection type' }).selectOption('VnetToVnet');
    await page.getByRole('textbox', { name: 'Remote gateway', exact: true }).fill(remote);
    await shot(page, `v2v-new-${name}`);
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('heading', { name: `Connections: ${name}` })).toBeVisible();
  }
  await newV2v('hub-spoke', 'hub-gw', 'spoke-gw');
  await newV2v('spoke-hub', 'spoke-gw', 'hub-gw');

  // Same-tenant halves share one generated key (GW-4), so the tunnel can come up.
  const keyOf = async (name: string) =>
    (await (await request.get(`${base}/connections/${name}/shared-key`)).json()).shared_key;
  expect(await keyOf('hub-spoke')).toBe(await keyOf('spoke-hub'));

  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Topology diagram' }).click();
  const diagram = page.getByRole('img', { name: 'Topology diagram' });
  const rowOf = (p: Page, name: string) =>
    p.getByRole('table', { name: 'Connections' }).getByRole('row').filter({ hasText: name });
  // Up needs: the worker picks up the desired state, both halves handshake over loopback, the
  // worker reports status (every 5 s), the portal polls (every 3 s). No reload in between.
  for (const name of ['hub-spoke', 'spoke-hub']) {
    await expect(rowOf(page, name).locator('.state-text')).toHaveText('up', { timeout: 60_000 });
    await expect(diagram.locator(`g[data-connection="${name}"]`)).toHaveAttribute('data-state', 'up');
  }
  await expect(rowOf(page, 'hub-spoke')).toContainText(/\d+ s ago/);
  await shot(page, 'v2v-diagram-up');

  // LIM-6: the dashboard meters the tunnel's outer bytes for the pair of regions (westeurope for
  // the hub, japaneast for the spoke), billable because they differ.
  await nav.getByRole('link', { name: 'Dashboard' }).click();
  const metering = page.getByRole('table', { name: /VNet-to-VNet traffic by region pair/ });
  const pair = metering.getByRole('row').filter({ hasText: 'japaneast ↔ westeurope' });
  await expect(pair).toContainText('yes', { timeout: 30_000 });
  await expect(pair.getByTestId('billed')).not.toHaveText('0 B', { timeout: 30_000 });
  await shot(page, 'v2v-dashboard-metering');

  // Disable one half through its edit form.
  await go('connections/hub-spoke');
  await page.getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('checkbox', { name: 'Enabled' }).uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('heading', { name: 'Connections: hub-spoke' })).toBeVisible();
  await nav.getByRole('link', { name: 'Topology diagram' }).click();
  await expect(rowOf(page, 'hub-spoke').locator('.state-text')).toHaveText('disabled');
  await expect(diagram.locator('g[data-connection="hub-spoke"]')).toHaveAttribute('data-state', 'disabled');
  await shot(page, 'v2v-diagram-disabled');
});
