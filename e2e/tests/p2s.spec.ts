import { test, expect } from '@playwright/test';
import { openTenantPage, seed, shot } from './helpers';

test('a PolicyBased gateway refuses point-to-site (P2S-1), live and on submit', async ({ page, request }) => {
  const s = await seed(request, { type: 'PolicyBased' });
  await openTenantPage(page, s.tenant, 'point-to-site/new');
  await expect(page.getByRole('heading', { name: 'New point-to-site configuration' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Gateway' })).toHaveValue(s.gateway);
  await page.getByRole('textbox', { name: 'Client address pool' }).fill('172.16.0.0/24');
  const p2s1 = page.getByRole('listitem').filter({ hasText: 'P2S-1' });
  await expect(p2s1).toBeVisible();
  await expect(p2s1).toContainText('RouteBased');
  await expect(page.getByRole('combobox', { name: 'Gateway' })).toHaveAttribute('aria-invalid', 'true');
  await shot(page, 'p2s-policy-based');

  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'nothing was saved' })).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Client address pool' })).toHaveValue('172.16.0.0/24');
  const list = await (await request.get(`/api/v1/tenants/${s.tenant}/point-to-site`)).json();
  expect(list).toHaveLength(0);
});

test('point-to-site on a RouteBased gateway is created and listed', async ({ page, request }) => {
  const s = await seed(request);
  await openTenantPage(page, s.tenant, 'point-to-site/new');
  await page.getByRole('textbox', { name: 'Client address pool' }).fill('10.1.0.0/24');
  // LIM-3/P2S-6: the pool overlaps the VNet.
  await expect(page.getByRole('listitem').filter({ hasText: /LIM-3|P2S-6/ }).first()).toBeVisible();
  await page.getByRole('textbox', { name: 'Client address pool' }).fill('172.16.0.0/24');
  await expect(page.getByRole('listitem').filter({ hasText: /LIM-3|P2S-6/ })).toHaveCount(0);
  await page.getByRole('button', { name: 'Save' }).click();
  const table = page.getByRole('table', { name: 'Point-to-site' });
  await expect(table.getByRole('row').filter({ hasText: s.gateway })).toContainText('172.16.0.0/24');
  await shot(page, 'p2s-list');
});
