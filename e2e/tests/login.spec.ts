import { test, expect } from '@playwright/test';
import { ADMIN, login, shot, unique } from './helpers';

test('log in, create a tenant, switch to it, and log out', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await shot(page, 'login');

  // A wrong password is refused and the form keeps the username.
  await page.getByRole('textbox', { name: 'Username' }).fill(ADMIN.username);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText('Login failed');
  await expect(page.getByRole('textbox', { name: 'Username' })).toHaveValue(ADMIN.username);

  await login(page);
  await expect(page.getByRole('heading', { name: 'Service health' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Tenants' })).toBeVisible();

  const tenant = unique('login');
  await page.getByRole('textbox', { name: 'Tenant name' }).fill(tenant);
  await page.getByRole('button', { name: 'Create tenant' }).click();
  // Creating switches to the new tenant: its diagram opens and the switcher shows it.
  await expect(page.getByRole('heading', { name: 'Topology diagram' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Tenant' })).toHaveValue(tenant);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Virtual networks' })).toBeVisible();
  await shot(page, 'tenant-created');

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  const me = await page.request.get('/api/v1/auth/me');
  expect(me.status()).toBe(401);
});
