import { test, expect } from '@playwright/test';
import { openTenantPage, seed, shot } from './helpers';

test('Japanese: headings, navigation and a rule message translated by rule id', async ({ page, request }) => {
  const s = await seed(request, { type: 'PolicyBased' });
  await openTenantPage(page, s.tenant, 'point-to-site/new');
  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(page.locator('html')).toHaveAttribute('lang', 'ja');
  await expect(page.getByRole('heading', { name: 'ポイント対サイト構成の作成' })).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'メイン' }).getByRole('link', { name: '仮想ネットワーク' })).toBeVisible();
  await page.getByRole('textbox', { name: 'クライアント アドレス プール' }).fill('172.16.0.0/24');
  const p2s1 = page.getByRole('listitem').filter({ hasText: 'P2S-1' });
  await expect(p2s1).toContainText('ポイント対サイトは RouteBased ゲートウェイでのみ使えます。');
  // The English message stays available as detail.
  await p2s1.getByText('詳細 (英語)').click();
  await expect(p2s1).toContainText('point-to-site works only on RouteBased gateways');
  await shot(page, 'japanese-p2s');

  await page.getByRole('navigation', { name: 'メイン' }).getByRole('link', { name: 'ダッシュボード' }).click();
  await expect(page.getByRole('heading', { name: 'サービスの状態' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'テナント一覧' })).toBeVisible();
  await page.reload();
  await expect(page.getByRole('button', { name: 'ログアウト' })).toBeVisible();
  await shot(page, 'japanese-dashboard');
});
