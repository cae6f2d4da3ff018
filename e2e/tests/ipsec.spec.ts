import { test, expect } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { apiLogin, freeUdpPort, login, seed, shot, unique } from './helpers';
import type { APIRequestContext } from '@playwright/test';

/**
 * Issue 17 in the portal: an IPsec site (IKE identity) and an IPsec connection with a custom
 * IPsec/IKE policy, made through the forms. The shared validator runs in the browser, so a
 * too-short SA lifetime is an IPSEC-3 violation at its field before anything is sent; the
 * connection's page shows the protocol and offers strongSwan's swanctl.conf and the parameter
 * sheet instead of the wg-quick file; the same pages in Japanese say it in Japanese.
 */
test('an IPsec connection with a custom policy: IPSEC-3 live, swanctl.conf download, Japanese labels', async ({ page, request }) => {
  test.setTimeout(90_000);
  const s = await seed(request);
  const tenant = s.tenant;
  await login(page, `/#/t/${encodeURIComponent(tenant)}/sites/new`);

  // The site: the device's IKE port and its IKE identity; no WireGuard key (help says so).
  await expect(page.getByRole('heading', { name: 'New local network site' })).toBeVisible();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('branch');
  await page.getByRole('textbox', { name: 'VPN device address' }).fill('198.51.100.30');
  await expect(page.getByRole('textbox', { name: 'VPN device port' })).toHaveAccessibleDescription(
    /WireGuard port \(51820\) or, for IPsec, the IKE port \(500\)/,
  );
  await page.getByRole('textbox', { name: 'VPN device port' }).fill('500');
  await page.getByRole('textbox', { name: 'Address prefixes' }).fill('192.168.30.0/24');
  await expect(page.getByRole('textbox', { name: 'Device public key' })).toHaveAccessibleDescription(
    /Only needed for WireGuard connections/,
  );
  const identity = page.getByRole('textbox', { name: 'IKE identity (optional)' });
  await expect(identity).toHaveAccessibleDescription(/IPv4 address, an FQDN or user@FQDN/);
  await identity.fill('branch.example.com');
  await shot(page, 'ipsec-site-new');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('table', { name: 'Local network sites' }).getByRole('row').filter({ hasText: 'branch' })).toContainText('198.51.100.30');

  // The connection: IPsec, a custom policy with every value of the model offered.
  await page.goto(`/#/t/${encodeURIComponent(tenant)}/connections/new`);
  await expect(page.getByRole('heading', { name: 'New connection' })).toBeVisible();
  await page.getByRole('textbox', { name: 'Name', exact: true }).fill('hub-branch');
  await expect(page.getByRole('combobox', { name: 'Site' })).toHaveValue('branch');
  const protocol = page.getByRole('combobox', { name: 'Tunnel protocol' });
  await expect(protocol).toHaveValue('WireGuard');
  await expect(page.getByRole('checkbox', { name: 'Custom IPsec/IKE policy' })).toHaveCount(0);
  await protocol.selectOption('IPsec');
  await expect(page.getByRole('combobox', { name: 'Connection mode' })).toHaveValue('Default');
  await page.getByRole('combobox', { name: 'Connection mode' }).selectOption('InitiatorOnly');
  await page.getByRole('checkbox', { name: 'Custom IPsec/IKE policy' }).check();
  const cipher = page.getByRole('combobox', { name: 'IKE encryption' });
  await expect(cipher.locator('option')).toHaveText(['aes256gcm16', 'aes128gcm16', 'chacha20poly1305']);
  await expect(page.getByRole('combobox', { name: 'IKE integrity (PRF)' }).locator('option')).toHaveText(['prfsha384', 'prfsha256']);
  await expect(page.getByRole('combobox', { name: 'DH group' }).locator('option')).toHaveText(['ecp384', 'ecp256', 'curve25519', 'modp2048']);
  await expect(page.getByRole('combobox', { name: 'IPsec (ESP) encryption' }).locator('option')).toHaveCount(3);
  await cipher.selectOption('aes128gcm16');
  await page.getByRole('combobox', { name: 'IKE integrity (PRF)' }).selectOption('prfsha256');
  await page.getByRole('combobox', { name: 'DH group' }).selectOption('ecp256');
  await page.getByRole('combobox', { name: 'IPsec (ESP) encryption' }).selectOption('chacha20poly1305');

  // A 30 s IKE SA lifetime is below IPSEC-3's 60 s: shown at the field before any submit.
  const ikeLifetime = page.getByRole('textbox', { name: 'IKE SA lifetime (s)' });
  await ikeLifetime.fill('30');
  const ipsec3 = page.locator('#form-ipsec-policy-ike-lifetime-secs-problems').getByRole('listitem').filter({ hasText: 'IPSEC-3' });
  await expect(ipsec3).toBeVisible();
  await expect(ikeLifetime).toHaveAttribute('aria-invalid', 'true');
  await shot(page, 'ipsec-connection-ipsec3');
  await ikeLifetime.fill('28800');
  await expect(ipsec3).toHaveCount(0);
  await expect(ikeLifetime).toHaveAttribute('aria-invalid', 'false');
  await page.getByRole('textbox', { name: 'CHILD SA lifetime (s)' }).fill('3600');
  await page.getByRole('textbox', { name: 'CHILD SA data (KB)' }).fill('102400');
  await shot(page, 'ipsec-connection-new');
  await page.getByRole('button', { name: 'Save' }).click();

  // The connection's page: IPsec, the IPsec status, swanctl.conf and the parameter sheet.
  await expect(page.getByRole('heading', { name: 'Connections: hub-branch' })).toBeVisible();
  await expect(page.getByTestId('conn-protocol')).toHaveText('IPsec (IKEv2)');
  await expect(page.getByTestId('conn-mode')).toHaveText('Initiator only (the gateway initiates)');
  await expect(page.getByRole('heading', { name: 'IPsec status' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Download device configuration (wg-quick)' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Show QR code' })).toHaveCount(0);
  const stored = await (await request.get(`/api/v1/tenants/${tenant}/connections/hub-branch`)).json();
  expect(stored.protocol).toBe('IPsec');
  expect(stored.connection_mode).toBe('InitiatorOnly');
  expect(stored.ipsec_policy).toEqual({
    ike: { cipher: 'aes128gcm16', prf: 'prfsha256', dh_group: 'ecp256' },
    esp_cipher: 'chacha20poly1305',
    ike_lifetime_secs: 28800,
    child_lifetime_secs: 3600,
    child_lifetime_kilobytes: 102400,
  });
  const swanctl = page.getByRole('link', { name: 'strongSwan swanctl.conf' });
  await expect(swanctl).toHaveAttribute('href', /\/connections\/hub-branch\/device-config\?format=swanctl$/);
  await expect(page.getByRole('link', { name: 'Parameter sheet' })).toHaveAttribute('href', /device-config\?format=sheet$/);
  await shot(page, 'ipsec-connection-page');
  const [download] = await Promise.all([page.waitForEvent('download'), swanctl.click()]);
  expect(download.suggestedFilename()).toBe('hub-branch.swanctl.conf');
  const conf = await readFile(await download.path(), 'utf8');
  expect(conf).toContain('remote_port');
  expect(conf).toContain('aes128gcm16-prfsha256-ecp256');

  // The connections list names the protocol.
  await page.goto(`/#/t/${encodeURIComponent(tenant)}/connections`);
  await expect(page.getByRole('table', { name: 'Connections' }).getByRole('row').filter({ hasText: 'hub-branch' })).toContainText('IPsec (IKEv2)');
  await page.goto(`/#/t/${encodeURIComponent(tenant)}/connections/hub-branch`);

  // The same page in Japanese.
  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(page.getByRole('heading', { name: '接続: hub-branch' })).toBeVisible();
  await expect(page.getByText('トンネル プロトコル', { exact: true })).toBeVisible();
  await expect(page.getByTestId('conn-protocol')).toHaveText('IPsec (IKEv2)');
  await expect(page.getByTestId('conn-mode')).toHaveText('イニシエーターのみ (ゲートウェイが開始する)');
  await expect(page.getByRole('heading', { name: 'IPsec の状態' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'パラメーター シート' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'strongSwan swanctl.conf' })).toBeVisible();
  await shot(page, 'ipsec-connection-page-ja');
  // And its edit form, with the stored policy.
  await page.goto(`/#/t/${encodeURIComponent(tenant)}/connections/hub-branch/edit`);
  await expect(page.getByRole('heading', { name: /接続の編集/ })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'トンネル プロトコル' })).toHaveValue('IPsec');
  await expect(page.getByRole('combobox', { name: '接続モード' })).toHaveValue('InitiatorOnly');
  await expect(page.getByRole('checkbox', { name: 'カスタム IPsec/IKE ポリシー' })).toBeChecked();
  await expect(page.getByRole('combobox', { name: 'DH グループ' })).toHaveValue('ecp256');
  await expect(page.getByRole('textbox', { name: 'IKE SA の有効期間 (秒)' })).toHaveValue('28800');
  await page.getByRole('textbox', { name: 'IKE SA の有効期間 (秒)' }).fill('30');
  await expect(page.getByRole('listitem').filter({ hasText: 'IPSEC-3' })).toBeVisible();
  await expect(page.locator('li.problem-error')).toHaveCount(1);
  await shot(page, 'ipsec-connection-edit-ja');
});


/** What the portal's status answer says of one IPsec connection (the fields this spec reads). */
interface IpsecEntry {
  connection: string;
  state: string;
  reason: string | null;
  ipsec?: {
    ike_state: string;
    ike_spis: string | null;
    ike_proposal: string | null;
    initiator: boolean;
    ike_rekey_unix: number | null;
    children: { inbound_spi: string; outbound_spi: string; cipher: string; selectors: string[]; rekey_unix: number }[];
    last_error: string | null;
  } | null;
}

/** The IKE proposals and ESP ciphers a connection without a custom policy offers and accepts. */
const DEFAULT_IKE_PROPOSALS = [
  'aes256gcm16-prfsha256-curve25519',
  'aes256gcm16-prfsha384-ecp384',
  'chacha20poly1305-prfsha256-curve25519',
  'aes128gcm16-prfsha256-ecp256',
  'aes256gcm16-prfsha384-modp2048',
];
const DEFAULT_ESP_CIPHERS = ['aes256gcm16', 'aes128gcm16', 'chacha20poly1305'];

/**
 * Polls the tenant's status answer until `done` holds for each named connection's entries, and
 * fails with what the status said last (the worker reports every 5 s and retries a refused IKE
 * SA every 10 s).
 */
async function waitStatus(
  request: APIRequestContext,
  tenant: string,
  what: string,
  done: (e: Record<string, IpsecEntry | undefined>) => boolean,
  timeoutMs = 60_000,
): Promise<Record<string, IpsecEntry | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, IpsecEntry | undefined> = {};
  for (;;) {
    const r = await request.get(`/api/v1/tenants/${tenant}/status`);
    expect(r.ok(), `status: ${r.status()}`).toBeTruthy();
    last = Object.fromEntries(((await r.json()) as IpsecEntry[]).map((e) => [e.connection, e]));
    if (done(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs / 1000} s; the status said last:\n${JSON.stringify(last, null, 2)}`);
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/**
 * The IPsec status as the portal shows it, from a real IKEv2/ESP tunnel: two RouteBased
 * gateways of one tenant, each with an IPsec site-to-site connection whose site is the other
 * gateway (127.0.0.1 and its port), both run by the e2e worker, so every IKE and ESP datagram
 * stays on the loopback of the test's namespace. One side initiates (InitiatorOnly), the other
 * answers (ResponderOnly): the page shows the IKE SA (state, a default proposal, the SPIs both
 * sides agree on, the gateway's role) and the CHILD SA (its SPIs, the mirror of the other
 * side's, and cipher). Then real refusals, each with what to check: a shared key changed on one
 * side (AUTHENTICATION_FAILED, in English and Japanese), custom policies with no proposal in
 * common (NO_PROPOSAL_CHOSEN), and, on a third gateway, a site where nothing answers (TIMEOUT).
 * TS_UNACCEPTABLE and DEAD_PEER are not produced here (two RouteBased gateways accept any
 * selectors; a peer that goes silent with its SA up needs dropped datagrams).
 */
test('the IPsec status of a real tunnel: IKE SA, CHILD SA, then AUTHENTICATION_FAILED, NO_PROPOSAL_CHOSEN and TIMEOUT with what to check, in both languages', async ({ page, request }) => {
  test.setTimeout(180_000);
  await apiLogin(request);
  const tenant = unique('ipsec');
  const base = `/api/v1/tenants/${tenant}`;
  const post = async (url: string, data: unknown) => {
    const r = await request.post(url, { data });
    expect(r.ok(), `${url}: ${r.status()} ${await r.text()}`).toBeTruthy();
  };
  await post('/api/v1/tenants', { name: tenant });
  const sides = [
    { vnet: 'east', space: '10.21.0.0/16', gw: 'east-gw', conn: 'east-west', mode: 'InitiatorOnly' },
    { vnet: 'west', space: '10.22.0.0/16', gw: 'west-gw', conn: 'west-east', mode: 'ResponderOnly' },
  ] as const;
  const ports: number[] = [];
  for (const x of sides) {
    await post(`${base}/vnets`, {
      name: x.vnet,
      region: 'westeurope',
      address_space: [x.space],
      subnets: [{ name: 'GatewaySubnet', prefix: x.space.replace('0.0/16', '255.0/27') }],
    });
    await post(`${base}/gateways`, { name: x.gw, vnet: x.vnet, gateway_type: 'RouteBased', sku: 'VpnGw1' });
    const gw = await (await request.get(`${base}/gateways/${x.gw}`)).json();
    const [host, port] = String(gw.public_endpoint).split(':');
    expect(host, 'the e2e gateways answer on the loopback').toBe('127.0.0.1');
    ports.push(Number(port));
  }
  const key = 'E2eIpsecKey2026';
  for (const [i, x] of sides.entries()) {
    const other = sides[1 - i];
    await post(`${base}/sites`, {
      name: `${other.gw}-site`,
      device_host: '127.0.0.1',
      device_port: ports[1 - i],
      address_prefixes: [other.space],
    });
    await post(`${base}/connections`, {
      name: x.conn,
      gateway: x.gw,
      kind: { type: 'SiteToSite', site: `${other.gw}-site` },
      protocol: 'IPsec',
      connection_mode: x.mode,
      shared_key: key,
    });
  }

  // A third gateway initiates to a site where nothing answers (a free port of the loopback).
  await post(`${base}/vnets`, {
    name: 'north',
    region: 'westeurope',
    address_space: ['10.23.0.0/16'],
    subnets: [{ name: 'GatewaySubnet', prefix: '10.23.255.0/27' }],
  });
  await post(`${base}/gateways`, { name: 'north-gw', vnet: 'north', gateway_type: 'RouteBased', sku: 'VpnGw1' });
  await post(`${base}/sites`, { name: 'nowhere', device_host: '127.0.0.1', device_port: await freeUdpPort(), address_prefixes: ['192.168.77.0/24'] });
  await post(`${base}/connections`, {
    name: 'north-nowhere',
    gateway: 'north-gw',
    kind: { type: 'SiteToSite', site: 'nowhere' },
    protocol: 'IPsec',
    connection_mode: 'InitiatorOnly',
  });

  // The worker brings the tunnel up: both sides report the one IKE SA and its CHILD SA.
  const up = (e?: IpsecEntry) => e?.state === 'up' && e.ipsec?.ike_state === 'established' && e.ipsec.children.length === 1;
  const st = await waitStatus(request, tenant, 'the IPsec tunnel comes up', (s) => up(s['east-west']) && up(s['west-east']));
  const east = st['east-west']!.ipsec!;
  const west = st['west-east']!.ipsec!;
  expect(east.initiator).toBe(true);
  expect(west.initiator).toBe(false);
  expect(east.ike_spis).toMatch(/^[0-9a-f]{16}_[0-9a-f]{16}$/);
  expect(west.ike_spis).toBe(east.ike_spis);
  expect(DEFAULT_IKE_PROPOSALS).toContain(east.ike_proposal);
  expect(west.ike_proposal).toBe(east.ike_proposal);
  const [ec, wc] = [east.children[0], west.children[0]];
  expect(wc.inbound_spi).toBe(ec.outbound_spi);
  expect(wc.outbound_spi).toBe(ec.inbound_spi);
  expect(DEFAULT_ESP_CIPHERS).toContain(ec.cipher);
  expect(wc.cipher).toBe(ec.cipher);
  // Rekeys are due ahead, at 90% of the default lifetimes on the initiator (28800 s, 3600 s).
  const now = Date.now() / 1000;
  expect(east.ike_rekey_unix).toBeGreaterThan(now + 0.9 * 28_800 - 120);
  expect(ec.rekey_unix).toBeGreaterThan(now + 0.9 * 3_600 - 120);

  // The initiator's page.
  await login(page, `/#/t/${encodeURIComponent(tenant)}/connections/east-west`);
  const card = page.getByTestId('ipsec-status');
  await expect(card.getByRole('heading', { name: 'IPsec status' })).toBeVisible();
  await expect(page.getByTestId('conn-state')).toHaveText('up');
  await expect(card.getByTestId('ike-state')).toHaveText('established');
  await expect(card.getByTestId('ike-proposal')).toHaveText(east.ike_proposal!);
  await expect(card.getByTestId('ike-spis')).toHaveText(east.ike_spis!);
  await expect(card.getByTestId('ike-role')).toHaveText('initiator');
  const children = card.getByRole('list', { name: 'CHILD SAs' }).getByRole('listitem');
  await expect(children).toHaveCount(1);
  await expect(children.first()).toContainText(`Inbound SPI${ec.inbound_spi}`);
  await expect(children.first()).toContainText(`Outbound SPI${ec.outbound_spi}`);
  await expect(children.first()).toContainText(`Cipher${ec.cipher}`);
  await expect(children.first()).toContainText('0.0.0.0/0 === 0.0.0.0/0');
  await expect(card.getByTestId('ipsec-last-error')).toHaveCount(0);
  // A time to come reads as a local time, never "... ago".
  await expect(card.getByTestId('ike-sa').locator('dt:text-is("Rekey due") + dd')).not.toContainText('ago');
  await expect(card.getByTestId('ike-sa').locator('dt:text-is("Rekey due") + dd')).not.toBeEmpty();
  await expect(children.first().locator('dt:text-is("Rekey due") + dd')).not.toContainText('ago');
  await shot(page, 'ipsec-status');

  // The responder's page: the same IKE SA, the CHILD SA's SPIs the other way round.
  await page.goto(`/#/t/${encodeURIComponent(tenant)}/connections/west-east`);
  await expect(page.getByRole('heading', { name: 'Connections: west-east' })).toBeVisible();
  await expect(card.getByTestId('ike-state')).toHaveText('established');
  await expect(card.getByTestId('ike-spis')).toHaveText(east.ike_spis!);
  await expect(card.getByTestId('ike-role')).toHaveText('responder');
  await expect(children).toHaveCount(1);
  await expect(children.first()).toContainText(`Inbound SPI${ec.outbound_spi}`);
  await expect(children.first()).toContainText(`Outbound SPI${ec.inbound_spi}`);

  // Another shared key on the responder's side: its IKE SA goes (a Delete to the initiator),
  // the initiator's next IKE_AUTH is refused.
  await page.goto(`/#/t/${encodeURIComponent(tenant)}/connections/east-west`);
  await expect(page.getByRole('heading', { name: 'Connections: east-west' })).toBeVisible();
  const r = await request.put(`${base}/connections/west-east/shared-key`, { data: { shared_key: 'AnotherKey2026' } });
  expect(r.status(), await r.text()).toBe(204);
  await waitStatus(request, tenant, 'AUTHENTICATION_FAILED on the initiator', (s) => s['east-west']?.ipsec?.last_error === 'AUTHENTICATION_FAILED');
  await expect(card.getByTestId('ipsec-last-error')).toHaveText('AUTHENTICATION_FAILED', { timeout: 10_000 });
  await expect(card.getByTestId('ipsec-error-help')).toContainText("this connection's shared key as its PSK");
  await expect(page.getByTestId('conn-reason')).toContainText("the device's keys do not match");
  await shot(page, 'ipsec-status-auth-failed');

  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(card.getByRole('heading', { name: 'IPsec の状態' })).toBeVisible();
  await expect(card.getByTestId('ipsec-last-error')).toHaveText('AUTHENTICATION_FAILED');
  await expect(card.getByTestId('ipsec-error-help')).toContainText('共有キーを PSK として使っていること');
  await shot(page, 'ipsec-status-auth-failed-ja');

  // The keys agree again, but each side has a custom policy the other does not accept: the
  // responder refuses the initiator's IKE_SA_INIT.
  const policies = {
    'east-west': { ike: { cipher: 'aes128gcm16', prf: 'prfsha256', dh_group: 'ecp256' }, esp_cipher: 'aes128gcm16' },
    'west-east': { ike: { cipher: 'aes256gcm16', prf: 'prfsha384', dh_group: 'ecp384' }, esp_cipher: 'aes256gcm16' },
  };
  for (const [name, policy] of Object.entries(policies)) {
    const c = await (await request.get(`${base}/connections/${name}`)).json();
    const u = await request.put(`${base}/connections/${name}`, { data: { ...c, shared_key: key, ipsec_policy: policy } });
    expect(u.ok(), `${name}: ${u.status()} ${await u.text()}`).toBeTruthy();
  }
  await waitStatus(request, tenant, 'NO_PROPOSAL_CHOSEN on the initiator', (s) => s['east-west']?.ipsec?.last_error === 'NO_PROPOSAL_CHOSEN');
  await expect(card.getByTestId('ipsec-last-error')).toHaveText('NO_PROPOSAL_CHOSEN', { timeout: 10_000 });
  await expect(card.getByTestId('ipsec-error-help')).toContainText('共通のプロポーザルがありません');
  await page.getByRole('combobox', { name: '言語' }).selectOption('en');
  await expect(card.getByTestId('ipsec-error-help')).toContainText('No common proposal');
  await expect(card.getByTestId('ike-state')).toHaveText('none');
  await expect(card.getByText('No CHILD SA.')).toBeVisible();
  await shot(page, 'ipsec-status-no-proposal');

  // The third gateway's device never answers: its IKE_SA_INIT went unanswered through every
  // retransmission (1 + 2 + 4 + 8 + 16 + 32 s after it was made, while the above ran).
  await waitStatus(request, tenant, 'TIMEOUT on the unanswered initiator', (s) => s['north-nowhere']?.ipsec?.last_error === 'TIMEOUT', 90_000);
  await page.goto(`/#/t/${encodeURIComponent(tenant)}/connections/north-nowhere`);
  await expect(page.getByRole('heading', { name: 'Connections: north-nowhere' })).toBeVisible();
  await expect(card.getByTestId('ipsec-last-error')).toHaveText('TIMEOUT', { timeout: 10_000 });
  await expect(card.getByTestId('ipsec-error-help')).toContainText('The device does not answer');
  await expect(card.getByTestId('ike-state')).not.toHaveText('established');
  await shot(page, 'ipsec-status-timeout');
});
