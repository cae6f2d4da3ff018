import { test, expect } from '@playwright/test';
import { openTenantPage, seed, shot, unique } from './helpers';

test('a VNet with a /30 GatewaySubnet shows GW-7 while typing, before submit', async ({ page, request }) => {
  const s = await seed(request);
  await openTenantPage(page, s.tenant, `vnets/${s.vnet}/edit`);
  await expect(page.getByRole('heading', { name: /Edit virtual network/ })).toBeVisible();
  const prefix = page.getByRole('textbox', { name: 'Subnet 1 prefix' });
  await expect(prefix).toHaveValue('10.1.255.0/27');
  await expect(page.getByRole('listitem').filter({ hasText: 'GW-7' })).toHaveCount(0);

  await prefix.fill('10.1.255.0/30');
  const gw7 = page.getByRole('listitem').filter({ hasText: 'GW-7' });
  await expect(gw7).toBeVisible();
  await expect(gw7).toContainText('too small');
  await expect(prefix).toHaveAttribute('aria-invalid', 'true');
  await shot(page, 'vnet-gw7-live');

  // Nothing was submitted: the server still has the /27.
  const stored = await (await request.get(`/api/v1/tenants/${s.tenant}/vnets/${s.vnet}`)).json();
  expect(stored.subnets.find((x: { name: string }) => x.name === 'GatewaySubnet').prefix).toBe('10.1.255.0/27');

  // Submitting anyway: the server's 422 is shown the same way and the input is kept.
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'nothing was saved' })).toBeVisible();
  await expect(prefix).toHaveValue('10.1.255.0/30');
  await expect(page.getByRole('listitem').filter({ hasText: 'GW-7' }).first()).toBeVisible();

  // Fixing it clears the problem live.
  await prefix.fill('10.1.255.0/28');
  await expect(page.getByRole('listitem').filter({ hasText: 'GW-7' })).toHaveCount(0);
});

test('create, list, edit and delete a VNet through the forms', async ({ page, request }) => {
  const s = await seed(request);
  const name = unique('spoke');
  await openTenantPage(page, s.tenant, 'vnets');
  await expect(page.getByRole('heading', { name: 'Virtual networks' })).toBeVisible();
  await page.getByRole('link', { name: 'New virtual network' }).click();
  await expect(page.getByRole('heading', { name: 'New virtual network' })).toBeVisible();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill(name);
  await page.getByRole('textbox', { name: 'Address space' }).fill('10.2.0.0/16');
  // A prefix that does not parse is flagged and blocks the submit.
  await page.getByRole('textbox', { name: 'Subnet 1 prefix' }).fill('10.2.300.0/27');
  await expect(page.getByRole('listitem').filter({ hasText: 'does not parse' })).toBeVisible();
  await page.getByRole('textbox', { name: 'Subnet 1 prefix' }).fill('10.2.255.0/27');
  await page.getByRole('button', { name: 'Add subnet' }).click();
  await page.getByRole('textbox', { name: 'Subnet 2 name' }).fill('app');
  // SUB-1: outside the address space, shown live beside the row.
  await page.getByRole('textbox', { name: 'Subnet 2 prefix' }).fill('10.3.0.0/24');
  await expect(page.getByRole('listitem').filter({ hasText: 'SUB-1' })).toBeVisible();
  await page.getByRole('textbox', { name: 'Subnet 2 prefix' }).fill('10.2.1.0/24');
  await expect(page.getByRole('listitem').filter({ hasText: 'SUB-1' })).toHaveCount(0);
  await shot(page, 'vnet-new');
  await page.getByRole('button', { name: 'Save' }).click();

  const table = page.getByRole('table', { name: 'Virtual networks' });
  const row = table.getByRole('row').filter({ hasText: name });
  await expect(row).toContainText('10.2.0.0/16');
  await expect(row).toContainText('app 10.2.1.0/24');
  await shot(page, 'vnets');

  await page.getByRole('link', { name: `Edit ${name}` }).click();
  await page.getByRole('textbox', { name: 'Region' }).fill('japaneast');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(table.getByRole('row').filter({ hasText: name })).toContainText('japaneast');

  await page.getByRole('button', { name: `Delete ${name}` }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(table.getByRole('row').filter({ hasText: name })).toHaveCount(0);
  const gone = await request.get(`/api/v1/tenants/${s.tenant}/vnets/${name}`);
  expect(gone.status()).toBe(404);
});
