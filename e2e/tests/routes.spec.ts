import { test, expect } from '@playwright/test';
import { openTenantPage, seed, shot } from './helpers';

test('effective routes and the next-hop tool, to a site prefix and to the Internet', async ({ page, request }) => {
  const s = await seed(request, { site: true });
  await openTenantPage(page, s.tenant, 'routes');
  await expect(page.getByRole('heading', { name: 'Effective routes' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Gateway' })).toHaveValue(s.gateway);
  const routes = page.getByRole('table', { name: 'Effective routes' });
  await expect(routes.getByRole('row').filter({ hasText: '192.168.10.0/24' })).toContainText(`site-to-site ${s.tenant}/${s.connection}`);
  await expect(routes.getByRole('row').filter({ hasText: '10.1.0.0/16' })).toContainText('VNet');

  await page.getByRole('textbox', { name: 'Source address' }).fill('10.1.1.4');
  await page.getByRole('textbox', { name: 'Destination address' }).fill('192.168.10.5');
  await page.getByRole('button', { name: 'Trace' }).click();
  const path = page.getByRole('list', { name: 'Path' });
  await expect(path.getByRole('listitem').first()).toBeVisible();
  await expect(path).toContainText(`gateway ${s.tenant}/${s.gateway}`);
  await expect(path).toContainText('site-to-site');
  await expect(page.getByTestId('nexthop-outcome')).toContainText(`site ${s.tenant}/${s.site}`);
  await shot(page, 'next-hop-site');

  await page.getByRole('textbox', { name: 'Destination address' }).fill('8.8.8.8');
  await page.getByRole('button', { name: 'Trace' }).click();
  await expect(page.getByTestId('nexthop-outcome')).toHaveText('to the Internet');
  await expect(path.getByRole('listitem').filter({ hasText: 'Internet' }).first()).toBeVisible();
  await expect(path).toContainText('GW-8');
  await shot(page, 'next-hop-internet');
});
