import { test, expect } from '@playwright/test';
import { openTenantPage, seed, shot } from './helpers';

test('a fresh form shows no error until it is typed into; the site form starts at port 51820', async ({ page, request }) => {
  const s = await seed(request);
  await openTenantPage(page, s.tenant, 'vnets/new');
  await expect(page.getByRole('heading', { name: 'New virtual network' })).toBeVisible();
  await expect(page.locator('li.problem')).toHaveCount(0);
  await expect(page.locator('[aria-invalid="true"]')).toHaveCount(0);
  // Typing the name does not flag the boxes the user has not reached yet.
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('spoke');
  await expect(page.locator('li.problem')).toHaveCount(0);
  // A box the user typed into is checked as they type.
  const space = page.getByRole('textbox', { name: 'Address space' });
  await space.fill('10.5.0.300/16');
  await expect(page.getByRole('listitem').filter({ hasText: 'does not parse' })).toBeVisible();
  await expect(space).toHaveAttribute('aria-invalid', 'true');
  await shot(page, 'forms-help-vnet-typed');

  await page.goto(`/#/t/${encodeURIComponent(s.tenant)}/sites/new`);
  await expect(page.getByRole('heading', { name: 'New local network site' })).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'VPN device port' })).toHaveValue('51820');
  await expect(page.locator('li.problem')).toHaveCount(0);
  // Submitting the empty form shows every problem.
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('li.problem').first()).toBeVisible();
  await shot(page, 'forms-help-site-submitted');
});

test('GW-7 warns on the VNet form when its GatewaySubnet is smaller than /29', async ({ page, request }) => {
  const s = await seed(request);
  await openTenantPage(page, s.tenant, 'vnets/new');
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('spoke');
  await page.getByRole('textbox', { name: 'Address space' }).fill('10.5.0.0/16');
  const prefix = page.getByRole('textbox', { name: 'Subnet 1 prefix' });
  await prefix.fill('10.5.255.0/30');
  const gw7 = page.getByRole('listitem').filter({ hasText: 'GW-7' });
  await expect(gw7).toBeVisible();
  // A warning (the VNet has no gateway yet), not an error: the VNet can be saved.
  await expect(gw7).toHaveClass(/problem-warning/);
  await expect(gw7).toContainText('warning');
  await expect(prefix).not.toHaveAttribute('aria-invalid', 'true');
  await shot(page, 'forms-help-gw7-warning');
  await prefix.fill('10.5.255.0/29');
  await expect(gw7).toHaveCount(0);
});

test('LIM-3 warns on the site form when a site prefix overlaps a VNet of the tenant', async ({ page, request }) => {
  const s = await seed(request);
  await openTenantPage(page, s.tenant, 'sites/new');
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('overlap');
  await page.getByRole('textbox', { name: 'VPN device address' }).fill('203.0.113.20');
  const prefixes = page.getByRole('textbox', { name: 'Address prefixes' });
  await prefixes.fill('10.1.5.0/24');
  const lim3 = page.getByRole('listitem').filter({ hasText: 'LIM-3' });
  await expect(lim3.first()).toBeVisible();
  await expect(lim3.first()).toHaveClass(/problem-warning/);
  await expect(lim3.first()).toContainText(s.vnet);
  // It names the VNet to fix and links to it.
  await expect(lim3.first().getByRole('link', { name: `Open ${s.vnet}` })).toHaveAttribute('href', new RegExp(`vnets/${s.vnet}/edit`));
  await shot(page, 'forms-help-lim3-warning');
  await prefixes.fill('192.168.77.0/24');
  await expect(lim3).toHaveCount(0);
});

test('GW-5 counts positions from 1; the empty new-key box shows nothing', async ({ page, request }) => {
  const s = await seed(request, { site: true });
  await openTenantPage(page, s.tenant, `connections/${s.connection}`);
  await expect(page.getByRole('heading', { name: `Connections: ${s.connection}` })).toBeVisible();
  await expect(page.locator('li.problem')).toHaveCount(0);
  await expect(page.getByRole('textbox', { name: 'New shared key' })).not.toHaveAttribute('aria-invalid', 'true');
  await page.getByRole('textbox', { name: 'New shared key' }).fill('abcd-');
  const gw5 = page.getByRole('listitem').filter({ hasText: 'GW-5' });
  await expect(gw5).toBeVisible();
  // '-' is the 5th character.
  await expect(gw5).toContainText('position 5');
  await expect(gw5).not.toContainText('position 4');
  await shot(page, 'forms-help-gw5');
});

test('the traffic chart plots a rate (bit/s) of the real V2V pair once its counters move', async ({ page, request }) => {
  test.setTimeout(150_000);
  const s = await seed(request);
  const base = `/api/v1/tenants/${s.tenant}`;
  for (const [url, data] of [
    [`${base}/vnets`, {
      name: 'spoke', region: 'japaneast', address_space: ['10.2.0.0/16'],
      subnets: [{ name: 'GatewaySubnet', prefix: '10.2.255.0/27' }],
    }],
    [`${base}/gateways`, { name: 'spoke-gw', vnet: 'spoke', gateway_type: 'RouteBased', sku: 'VpnGw1' }],
    [`${base}/connections`, { name: 'hub-spoke', gateway: 'hub-gw', kind: { type: 'VnetToVnet', remote_gateway: { name: 'spoke-gw' } } }],
    [`${base}/connections`, { name: 'spoke-hub', gateway: 'spoke-gw', kind: { type: 'VnetToVnet', remote_gateway: { name: 'hub-gw' } } }],
  ] as const) {
    const r = await request.post(url, { data });
    expect(r.ok(), `${url}: ${await r.text()}`).toBeTruthy();
  }
  // The per-connection counters are inner (tunnelled) bytes, and the e2e worker runs with
  // --no-tun: the real pair handshakes and comes up, but carries no inner traffic, so its
  // counters stay 0. The real status answers are passed through with traffic added on top
  // (1 MB/s received, 250 kB/s sent, from the moment the page opened), which is what the
  // chart must turn into a rate.
  const t0 = Date.now();
  await page.route(/\/api\/v1\/tenants\/[^/]+\/status$/, async (route) => {
    const response = await route.fetch();
    if (!response.ok()) return route.fulfill({ response });
    const rows = await response.json();
    const secs = (Date.now() - t0) / 1000;
    for (const r of rows) {
      r.rx_bytes += Math.round(secs * 1_000_000);
      r.tx_bytes += Math.round(secs * 250_000);
    }
    // Not the original headers: its Content-Length is the unmodified body's.
    await route.fulfill({ status: 200, json: rows });
  });
  await openTenantPage(page, s.tenant, 'connections/hub-spoke');
  const chart = page.getByRole('img', { name: /rx\/tx bytes/ });
  await expect(chart).toBeVisible();
  await expect(page.getByTestId('conn-state')).toHaveText('up', { timeout: 90_000 });
  await expect
    .poll(async () => Number(await chart.getAttribute('data-peak')), { timeout: 30_000 })
    .toBeGreaterThan(0);
  // ~1 MB/s is ~8 Mbit/s; ~250 kB/s is ~2 Mbit/s.
  await expect(page.getByTestId('rate-rx')).toHaveText(/^\d+(\.\d)? Mbit\/s$/);
  await expect(page.getByTestId('rate-tx')).toHaveText(/^\d+(\.\d)? Mbit\/s$/);
  await expect(page.getByTestId('chart-max')).toHaveText(/^\d+ Mbit\/s$/);
  await expect(page.getByTestId('conn-rx')).toHaveText(/^\d+(\.\d)? MB$/);
  // The polyline has a point per pair of samples.
  await expect
    .poll(async () => ((await chart.locator('polyline.series-rx').getAttribute('points')) ?? '').split(' ').length)
    .toBeGreaterThan(1);
  await shot(page, 'forms-help-chart-rate');
});
