import { test, expect } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { apiLogin, login, shot, unique, wgKey } from './helpers';

test('a complete site-to-site set-up through the UI ends with the device configuration', async ({ page, request }) => {
  test.setTimeout(90_000);
  const tenant = unique('s2s');
  const deviceKey = wgKey();
  await login(page);

  // Tenant
  await page.getByRole('textbox', { name: 'Tenant name' }).fill(tenant);
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await expect(page.getByRole('combobox', { name: 'Tenant' })).toHaveValue(tenant);
  const nav = page.getByRole('navigation', { name: 'Main' });

  // VNet with a GatewaySubnet
  await nav.getByRole('link', { name: 'Virtual networks' }).click();
  await page.getByRole('link', { name: 'New virtual network' }).click();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('hub');
  await page.getByRole('textbox', { name: 'Address space' }).fill('10.10.0.0/16');
  await expect(page.getByRole('textbox', { name: 'Subnet 1 name' })).toHaveValue('GatewaySubnet');
  await page.getByRole('textbox', { name: 'Subnet 1 prefix' }).fill('10.10.255.0/27');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('table', { name: 'Virtual networks' }).getByRole('row').filter({ hasText: 'hub' })).toBeVisible();

  // RouteBased gateway
  await nav.getByRole('link', { name: 'Gateways' }).click();
  await page.getByRole('link', { name: 'New gateway' }).click();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('hub-gw');
  await expect(page.getByRole('combobox', { name: 'Virtual network' })).toHaveValue('hub');
  await page.getByRole('combobox', { name: 'Gateway type' }).selectOption('RouteBased');
  await page.getByRole('combobox', { name: 'SKU' }).selectOption('VpnGw1');
  await shot(page, 'gateway-new');
  await page.getByRole('button', { name: 'Save' }).click();
  const gwRow = page.getByRole('table', { name: 'Gateways' }).getByRole('row').filter({ hasText: 'hub-gw' });
  await expect(gwRow).toContainText('RouteBased');
  await shot(page, 'gateways');

  // Site with a device public key
  await nav.getByRole('link', { name: 'Local network sites' }).click();
  await page.getByRole('link', { name: 'New local network site' }).click();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('branch');
  await page.getByRole('textbox', { name: 'VPN device address' }).fill('198.51.100.20');
  await page.getByRole('textbox', { name: 'Address prefixes' }).fill('192.168.20.0/24');
  await page.getByRole('textbox', { name: 'Device public key' }).fill('not-a-key');
  await expect(page.getByRole('listitem').filter({ hasText: 'KEY-1' })).toBeVisible();
  await page.getByRole('textbox', { name: 'Device public key' }).fill(deviceKey);
  await expect(page.getByRole('listitem').filter({ hasText: 'KEY-1' })).toHaveCount(0);
  await shot(page, 'site-new');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('table', { name: 'Local network sites' }).getByRole('row').filter({ hasText: 'branch' })).toContainText('198.51.100.20');

  // Connection
  await nav.getByRole('link', { name: 'Connections' }).click();
  await page.getByRole('link', { name: 'New connection' }).click();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('hub-branch');
  await expect(page.getByRole('combobox', { name: 'Gateway' })).toHaveValue('hub-gw');
  await page.getByRole('combobox', { name: 'Connection type' }).selectOption('SiteToSite');
  await expect(page.getByRole('combobox', { name: 'Site' })).toHaveValue('branch');
  await shot(page, 'connection-new');
  await page.getByRole('button', { name: 'Save' }).click();

  // The connection page, and the device configuration download
  await expect(page.getByRole('heading', { name: 'Connections: hub-branch' })).toBeVisible();
  await shot(page, 'connection-page');
  await apiLogin(request);
  const gw = await (await request.get(`/api/v1/tenants/${tenant}/gateways/hub-gw`)).json();
  expect(gw.public_key).toBeTruthy();
  expect(gw.public_endpoint).toBeTruthy();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download device configuration (wg-quick)' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('hub-branch.conf');
  const conf = await readFile(await download.path(), 'utf8');
  expect(conf).toContain('[Interface]');
  expect(conf).toContain('[Peer]');
  expect(conf).toContain(`PublicKey = ${gw.public_key}`);
  expect(conf).toContain(`Endpoint = ${gw.public_endpoint}`);
  expect(conf).toMatch(/PresharedKey = [A-Za-z0-9+/]{43}=/);
  expect(conf).toMatch(/AllowedIPs = .*10\.10\.0\.0\/16/);

  // The diagram shows the new connection.
  await nav.getByRole('link', { name: 'Topology diagram' }).click();
  const diagram = page.getByRole('img', { name: 'Topology diagram' });
  await expect(diagram).toBeVisible();
  await expect(diagram.getByText(/hub-branch/)).toBeVisible();
  await expect(diagram.getByText('hub-gw')).toBeVisible();
  await expect(diagram.getByText('branch', { exact: true })).toBeVisible();
  const statusRow = page.getByRole('table', { name: 'Connections' }).getByRole('row').filter({ hasText: 'hub-branch' });
  await expect(statusRow).toContainText(/up|idle|down/);
  await shot(page, 'diagram');
});
