import { test, expect } from '@playwright/test';
import { login, shot } from './helpers';

test('dashboard shows service health and the connected worker', async ({ page }) => {
  await login(page);
  await expect(page.getByRole('heading', { name: 'Service health' })).toBeVisible();
  await expect(page.getByTestId('health-status')).toHaveText('ok');
  await expect(page.getByTestId('health-database')).toHaveText('sqlite');
  // The worker beats every few seconds; the dashboard refreshes every 2 s.
  const workers = page.getByRole('table', { name: 'Connected workers' });
  await expect(workers.getByRole('cell', { name: 'e2e-worker' })).toBeVisible({ timeout: 15_000 });
  await shot(page, 'dashboard');
});

test('language switch to Japanese is applied and remembered', async ({ page }) => {
  await login(page);
  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(page.getByRole('heading', { name: 'サービスの状態' })).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('lang', 'ja');
  await page.reload();
  await expect(page.getByRole('heading', { name: 'サービスの状態' })).toBeVisible();
  await page.getByRole('combobox', { name: '言語' }).selectOption('en');
  await expect(page.getByRole('heading', { name: 'Service health' })).toBeVisible();
});

test('unknown API paths answer with a JSON 404', async ({ request }) => {
  const resp = await request.get('/api/v1/does-not-exist');
  expect(resp.status()).toBe(404);
  const body = await resp.json();
  expect(body.error).toBe('not_found');
});
