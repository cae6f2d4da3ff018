import { test, expect } from '@playwright/test';
import { openTenantPage, seed, shot } from './helpers';

test('connection page: status, chart, QR code, reveal and replace the shared key', async ({ page, request }) => {
  const s = await seed(request, { site: true });
  await openTenantPage(page, s.tenant, `connections/${s.connection}`);
  await expect(page.getByRole('heading', { name: `Connections: ${s.connection}` })).toBeVisible();
  await expect(page.getByTestId('conn-state')).toHaveText(/up|idle|down/);
  await expect(page.getByRole('img', { name: 'rx/tx bytes' })).toBeVisible();

  await page.getByRole('button', { name: 'Show QR code' }).click();
  await expect(page.getByRole('img', { name: 'Device configuration QR code' })).toBeVisible();

  // Reveal, behind a confirmation.
  await page.getByRole('button', { name: 'Reveal shared key' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('audit log');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('shared-key')).toHaveCount(0);
  await page.getByRole('button', { name: 'Reveal shared key' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByTestId('shared-key')).toHaveText(/^[A-Za-z0-9]{1,128}$/);

  // Replace: GW-5 is checked live; the replacement needs a confirmation.
  const input = page.getByRole('textbox', { name: 'New shared key' });
  await input.fill('not valid!');
  await expect(page.getByRole('listitem').filter({ hasText: 'GW-5' })).toBeVisible();
  await input.fill('NewSharedKey123');
  await expect(page.getByRole('listitem').filter({ hasText: 'GW-5' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Replace shared key' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'replaced' })).toBeVisible();
  await page.getByRole('button', { name: 'Reveal shared key' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByTestId('shared-key')).toHaveText('NewSharedKey123');
  await shot(page, 'connection-key');
});
