import { test, expect } from '@playwright/test';
import { writeFile } from 'node:fs/promises';
import { login } from './helpers';

test('benchmark: live validation in the browser and dashboard render time', async ({ page }) => {
  test.setTimeout(180_000);
  await page.goto('/#/bench');
  const small = page.getByTestId('bench-500');
  const large = page.getByTestId('bench-large');
  await expect(small).toBeVisible({ timeout: 150_000 });
  const smallMs = Number(await small.textContent());
  const largeMs = Number(await large.textContent());
  const firstMs = Number(await page.getByTestId('bench-500-first').textContent());
  const maxMs = Number(await page.getByTestId('bench-500-max').textContent());
  expect(maxMs).toBeGreaterThanOrEqual(smallMs);
  expect(Number.isFinite(smallMs)).toBeTruthy();
  expect(Number.isFinite(largeMs)).toBeTruthy();
  await page.screenshot({ path: 'test-results/bench.png', fullPage: true });

  // Dashboard render time after navigation: from navigation start to the health facts.
  await login(page);
  await page.goto('/');
  const handle = await page.waitForFunction(
    () => (document.querySelector('[data-testid="health-status"]') ? performance.now() : false),
    undefined,
    { polling: 'raf', timeout: 15_000 },
  );
  const dashboardMs = Number(await handle.jsonValue());
  expect(dashboardMs).toBeGreaterThan(0);

  const numbers = {
    live_validation_500_vnets_ms: smallMs,
    live_validation_500_vnets_slowest_ms: maxMs,
    live_validation_500_vnets_first_after_load_ms: firstMs,
    validation_2000_vnets_10000_sites_20000_prefixes_ms: largeMs,
    dashboard_render_ms: Math.round(dashboardMs * 10) / 10,
  };
  console.log(`BENCH ${JSON.stringify(numbers)}`);
  await writeFile('test-results/bench.json', JSON.stringify(numbers, null, 2));
});
