import { test, expect } from '@playwright/test';
import { openTenantPage, seed, shot } from './helpers';

test('a site overlapping the VNet shows LIM-3 and nothing is saved', async ({ page, request }) => {
  const s = await seed(request, { site: true });
  await openTenantPage(page, s.tenant, `sites/${s.site}/edit`);
  await expect(page.getByRole('heading', { name: /Edit local network site/ })).toBeVisible();
  const prefixes = page.getByRole('textbox', { name: 'Address prefixes' });
  await expect(prefixes).toHaveValue('192.168.10.0/24');
  await prefixes.fill('192.168.10.0/24, 10.1.2.0/24');
  const lim3 = page.getByRole('listitem').filter({ hasText: 'LIM-3' });
  await expect(lim3.first()).toBeVisible();
  await expect(prefixes).toHaveAttribute('aria-invalid', 'true');
  await shot(page, 'site-lim3-live');

  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'nothing was saved' })).toBeVisible();
  await expect(prefixes).toHaveValue('192.168.10.0/24, 10.1.2.0/24');
  await expect(lim3.first()).toBeVisible();
  const stored = await (await request.get(`/api/v1/tenants/${s.tenant}/sites/${s.site}`)).json();
  expect(stored.address_prefixes).toEqual(['192.168.10.0/24']);
});

test('a site device must be an IPv4 address or a host name (CONN-4)', async ({ page, request }) => {
  const s = await seed(request);
  await openTenantPage(page, s.tenant, 'sites/new');
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('v6site');
  await page.getByRole('textbox', { name: 'Address prefixes' }).fill('192.168.50.0/24');
  await page.getByRole('textbox', { name: 'VPN device address' }).fill('2001:db8::1');
  await expect(page.getByRole('listitem').filter({ hasText: 'CONN-4' })).toBeVisible();
  await page.getByRole('textbox', { name: 'VPN device address' }).fill('vpn.example.com');
  await expect(page.getByRole('listitem').filter({ hasText: 'CONN-4' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('table', { name: 'Local network sites' }).getByRole('row').filter({ hasText: 'v6site' })).toContainText('vpn.example.com');
  await shot(page, 'sites');
});
