import { test, expect, type Page, type APIRequestContext } from '@playwright/test';
import { ADMIN, seed, shot, unique } from './helpers';

/**
 * The portal in Japanese, everywhere: every page and form state this test can reach is visited
 * with the language set to 日本語, and its visible text must not contain an English word other
 * than the ones below. Closed "詳細 (英語)" disclosures (the English detail kept for support) are
 * not visible text, so they do not count.
 */

/**
 * Words that stay as they are in the Japanese product language, each for a reason.
 * Resource names, prefixes, addresses, keys and rule ids are removed before this list is used
 * (see `strip`), so they are not listed here.
 */
const ALLOWED = new Set([
  // The product, and the language picker naming its own language.
  'Isthmus', 'English',
  // Networking terms and protocols written in Latin letters in Japanese networking documents.
  'VPN', 'VNet', 'IP', 'IPv4', 'IPv6', 'DNS', 'TCP', 'MSS', 'MTU', 'QR', 'P2S', 'DDNS', 'WireGuard', 'base64',
  // Issue 17: IPsec's protocol and key names, and the strongSwan device it names.
  'IPsec', 'IKE', 'IKEv2', 'ID', 'FQDN', 'PSK', 'strongSwan',
  // Values of the API that the forms offer by name (gateway types, SKUs, the required subnet).
  'RouteBased', 'PolicyBased', 'SKU', 'Basic', 'Standard', 'HighPerformance',
  'GatewaySubnet',
  // Commands, options and environment variables the user types as they are.
  'isthmus-worker', 'server', 'token', 'URL', 'TOKEN', 'public-address', 'ISTHMUS_PUBLIC_ADDRESS', 'wg-quick',
  // Database engine names (the dashboard says which one the server uses).
  'sqlite', 'postgres', 'postgresql',
  // Units: decimal SI bytes and bit rates.
  'B', 'kB', 'MB', 'GB', 'bit', 'kbit', 'Mbit', 'Gbit', 's',
  // HTTP, in the rare "要求が失敗しました (HTTP 404)".
  'HTTP',
  // Character classes, written as in every Japanese specification (GW-5: "ASCII の英数字 (A-Z, a-z, 0-9)").
  'ASCII', 'A-Z', 'a-z',
]);

/** Names of resources the user created (and their own user name) are theirs, not English. */
async function resourceNames(request: APIRequestContext, tenants: string[]): Promise<Set<string>> {
  // Every tenant the administrator sees (other tests' tenants are in the tenant picker).
  const all: { name: string }[] = await (await request.get('/api/v1/tenants')).json();
  const names = new Set<string>([ADMIN.username, 'e2e-worker', ...tenants, ...all.map((t) => t.name)]);
  // Regions are names the users chose; the dashboard's metering lists other tenants' too.
  const meters = await (await request.get('/api/v1/metering/region-pairs')).json().catch(() => []);
  for (const m of Array.isArray(meters) ? meters : []) {
    names.add(m.a);
    names.add(m.b);
  }
  for (const tn of tenants) {
    const t = await (await request.get(`/api/v1/tenants/${tn}/topology`)).json().catch(() => ({}));
    for (const list of Object.values(t ?? {})) {
      if (!Array.isArray(list)) continue;
      for (const r of list as Record<string, unknown>[]) {
        for (const k of ['name', 'vnet', 'gateway', 'site', 'region', 'tenant']) {
          if (typeof r[k] === 'string') names.add(r[k] as string);
        }
        for (const s of (r.subnets as { name: string }[] | undefined) ?? []) names.add(s.name);
      }
    }
  }
  return names;
}

/** The visible text without what is allowed to be Latin: names, prefixes, addresses, keys, rule ids. */
function strip(text: string, names: Set<string>): string {
  let t = text;
  // Longest names first, so "hub-gw" goes before "hub".
  for (const n of [...names].sort((a, b) => b.length - a.length)) t = t.split(n).join(' ');
  return t
    .replace(/[A-Za-z0-9+/]{43}=/g, ' ') // WireGuard keys (32 bytes, base64)
    .replace(/\bVpnGw\d+\w*\b/g, ' ') // SKU names offered by the gateway form
    .replace(/\b[A-Z][A-Z0-9]*-\d+\b/g, ' ') // rule ids: GW-7, LIM-3, P2S-1, S2S-2, NAME-2
    .replace(/\[?[0-9a-fA-F]*:[0-9a-fA-F:.]*\]?(\/\d+)?(:\d+)?/g, ' ') // IPv6 prefixes and addresses
    .replace(/\b\d+(\.\d+){3}(\/\d+)?(:\d+)?\b/g, ' ') // IPv4 prefixes and addresses (with ports)
    .replace(/\b[a-z0-9-]+(\.[a-z0-9-]+)+\b/gi, ' '); // host names (vpn.example.com)
}

function englishWords(text: string, names: Set<string>): string[] {
  const words = strip(text, names).match(/[A-Za-z][A-Za-z0-9_-]*/g) ?? [];
  return [...new Set(words.filter((w) => !ALLOWED.has(w) && !ALLOWED.has(w.replace(/^-+|-+$/g, ''))))];
}

async function loginJa(page: Page, path: string) {
  await page.addInitScript(() => localStorage.setItem('isthmus.lang', 'ja'));
  await page.goto(path);
  await page.locator('#login-username').fill(ADMIN.username);
  await page.locator('#login-password').fill(ADMIN.password);
  await page.locator('form button[type="submit"]').click();
  await expect(page.getByRole('button', { name: 'ログアウト' })).toBeVisible();
}

test('Japanese everywhere: no English word on any page or form state', async ({ page, request }) => {
  test.setTimeout(120_000);
  const s = await seed(request, { site: true });
  const empty = unique('t');
  expect((await request.post('/api/v1/tenants', { data: { name: empty } })).ok()).toBeTruthy();
  const names = await resourceNames(request, [s.tenant, empty]);
  const found: Record<string, string[]> = {};

  async function check(name: string, ready: () => Promise<void>) {
    await ready();
    // Let the live status and the topology settle (they refresh every 2-3 s).
    await page.waitForTimeout(300);
    const text = await page.locator('body').innerText();
    const words = englishWords(text, names);
    if (words.length > 0) found[name] = words;
    await shot(page, `ja-${name}`);
  }
  const go = (tn: string, rest: string) => page.goto(`/#/t/${encodeURIComponent(tn)}/${rest}`);
  const heading = (n: string | RegExp) => async () => {
    await expect(page.getByRole('heading', { name: n }).first()).toBeVisible();
  };

  await loginJa(page, '/');
  await check('dashboard', async () => {
    await expect(page.getByRole('heading', { name: 'サービスの状態' })).toBeVisible();
    await expect(page.getByTestId('health-status')).toHaveText('正常');
  });
  // Tenant-name error, typed (NAME-2).
  await check('dashboard-tenant-error', async () => {
    await page.getByRole('textbox', { name: 'テナント名' }).fill('-bad name');
    await expect(page.getByRole('listitem').filter({ hasText: 'NAME-2' })).toBeVisible();
  });

  await go(s.tenant, 'diagram');
  await check('diagram', heading('トポロジ図'));
  await go(empty, 'diagram');
  await check('diagram-empty', async () => {
    await expect(page.getByTestId('empty-diagram')).toContainText('仮想ネットワークはまだありません');
    await expect(page.getByTestId('empty-diagram').getByRole('link', { name: '作成する' })).toBeVisible();
  });

  for (const [rest, h] of [
    ['vnets', '仮想ネットワーク'],
    ['gateways', 'ゲートウェイ'],
    ['sites', 'ローカル ネットワーク サイト'],
    ['connections', '接続'],
    ['point-to-site', 'ポイント対サイト'],
  ] as const) {
    await go(s.tenant, rest);
    await check(`list-${rest}`, heading(h));
  }
  await go(s.tenant, 'connections');
  await expect(page.getByRole('table', { name: '接続' })).toContainText('サイト対サイト → branch');
  await expect(page.getByRole('table', { name: '接続' })).toContainText('はい');

  // Fresh forms (no problem shown), then forms with problems.
  for (const [rest, h] of [
    ['vnets/new', '仮想ネットワークの作成'],
    ['gateways/new', 'ゲートウェイの作成'],
    ['sites/new', 'ローカル ネットワーク サイトの作成'],
    ['connections/new', '接続の作成'],
    ['point-to-site/new', 'ポイント対サイト構成の作成'],
    [`vnets/${s.vnet}/edit`, /仮想ネットワークの編集/],
    [`gateways/${s.gateway}/edit`, /ゲートウェイの編集/],
    [`sites/${s.site}/edit`, /ローカル ネットワーク サイトの編集/],
    [`connections/${s.connection}/edit`, /接続の編集/],
  ] as const) {
    await go(s.tenant, rest);
    await check(`form-${rest.replace(/\//g, '-')}`, async () => {
      await heading(h)();
      // A fresh form shows nothing; an edit form may show the warnings its resource has
      // (GW-10 for the e2e worker's loopback endpoints), never an error before a change.
      await expect(page.locator(rest.endsWith('/new') ? 'li.problem' : 'li.problem-error')).toHaveCount(0);
    });
  }
  await go(s.tenant, 'vnets/new');
  await check('form-vnet-errors', async () => {
    await page.getByRole('textbox', { name: '名前', exact: true }).fill('spoke');
    await page.getByRole('textbox', { name: 'アドレス空間' }).fill('10.1.0.0/16, 10.9.300.0/24');
    await page.getByRole('textbox', { name: 'サブネット 1 プレフィックス' }).fill('10.1.255.0/30');
    await expect(page.locator('li.problem').first()).toBeVisible();
  });
  await page.getByRole('button', { name: '保存' }).click();
  await check('form-vnet-submitted', async () => {
    await expect(page.getByRole('alert').first()).toBeVisible();
  });
  await go(s.tenant, `sites/${s.site}/edit`);
  await check('form-site-lim3', async () => {
    await page.getByRole('textbox', { name: 'アドレス プレフィックス' }).fill('192.168.10.0/24, 10.1.2.0/24');
    await expect(page.getByRole('listitem').filter({ hasText: 'LIM-3' }).first()).toBeVisible();
  });
  await page.getByRole('button', { name: '保存' }).click();
  await check('form-site-refused', async () => {
    await expect(page.getByRole('alert').filter({ hasText: '何も保存されていません' })).toBeVisible();
  });
  await go(s.tenant, 'point-to-site/new');
  await check('form-p2s-errors', async () => {
    await page.getByRole('textbox', { name: 'クライアント アドレス プール' }).fill('10.1.0.0/24');
    await expect(page.locator('li.problem').first()).toBeVisible();
  });

  await go(s.tenant, `connections/${s.connection}`);
  await check('connection', async () => {
    await expect(page.getByRole('heading', { name: `接続: ${s.connection}` })).toBeVisible();
    await expect(page.locator('li.problem')).toHaveCount(0);
  });
  await check('connection-key-error', async () => {
    await page.getByRole('textbox', { name: '新しい共有キー' }).fill('abcd-');
    await expect(page.getByRole('listitem').filter({ hasText: 'GW-5' })).toBeVisible();
  });

  await go(s.tenant, 'routes');
  await check('routes', async () => {
    await expect(page.getByRole('table', { name: '有効なルート' })).toBeVisible();
  });
  for (const [name, dst] of [['site', '192.168.10.5'], ['internet', '8.8.8.8'], ['vnet', '10.1.1.9']] as const) {
    await check(`nexthop-${name}`, async () => {
      await page.getByRole('textbox', { name: '送信元アドレス' }).fill('10.1.1.4');
      await page.getByRole('textbox', { name: '宛先アドレス' }).fill(dst);
      await page.getByRole('button', { name: '経路を調べる' }).click();
      await expect(page.getByTestId('nexthop-outcome')).toBeVisible();
    });
  }
  await check('nexthop-bad-input', async () => {
    await page.getByRole('textbox', { name: '宛先アドレス' }).fill('not-an-address');
    await page.getByRole('button', { name: '経路を調べる' }).click();
    await expect(page.getByRole('alert').first()).toBeVisible();
  });

  expect(found, `English words on Japanese pages (page: words): ${JSON.stringify(found, null, 1)}`).toEqual({});
});
