import { test, expect } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { login, seed, shot } from './helpers';

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

/**
 * The IPsec status as the portal shows it: the IKE SA, each CHILD SA and the last error with
 * what to check, in English and Japanese. No IKE peer answers inside the test's namespace, so
 * the tenant's status answer is the real server's with this connection's entry replaced by an
 * IPsec status of the contract type (`ConnectionStatus.ipsec`).
 */
test('the IPsec status: IKE SA, CHILD SAs and the last error with what to check, in both languages', async ({ page, request }) => {
  test.setTimeout(60_000);
  const s = await seed(request);
  const base = `/api/v1/tenants/${s.tenant}`;
  for (const [url, data] of [
    [`${base}/sites`, { name: 'branch', device_host: '203.0.113.40', device_port: 500, address_prefixes: ['192.168.40.0/24'] }],
    [`${base}/connections`, { name: 'hub-branch', gateway: s.gateway, kind: { type: 'SiteToSite', site: 'branch' }, protocol: 'IPsec' }],
  ] as const) {
    const r = await request.post(url, { data });
    expect(r.ok(), `${url}: ${r.status()} ${await r.text()}`).toBeTruthy();
  }
  const now = Math.floor(Date.now() / 1000);
  let lastError = 'AUTHENTICATION_FAILED';
  await page.route(`**${base}/status`, async (route) => {
    const real = await route.fetch();
    const list = ((await real.json()) as { connection: string }[]).filter((x) => x.connection !== 'hub-branch');
    list.push({
      gateway: s.gateway,
      connection: 'hub-branch',
      worker: 'e2e-worker',
      last_handshake_unix: now - 300,
      rx_bytes: 1_500_000,
      tx_bytes: 2_500_000,
      endpoint: '203.0.113.40:4500',
      reported_at: new Date().toISOString(),
      state: 'up',
      since: null,
      reason: null,
      ipsec: {
        ike_state: 'established',
        ike_spis: '0a1b2c3d4e5f6071_8192a3b4c5d6e7f8',
        ike_proposal: 'aes256gcm16-prfsha384-ecp384',
        initiator: true,
        ike_established_unix: now - 300,
        ike_rekey_unix: now + 25_000,
        children: [
          {
            inbound_spi: 'c1a2b3d4',
            outbound_spi: 'd4c3b2a1',
            state: 'established',
            cipher: 'aes256gcm16',
            selectors: ['0.0.0.0/0 === 0.0.0.0/0', '::/0 === ::/0'],
            established_unix: now - 300,
            rekey_unix: now + 3_000,
            rx_bytes: 1_500_000,
            tx_bytes: 2_500_000,
            rx_packets: 1_200,
            tx_packets: 2_100,
          },
        ],
        rekeys: 2,
        last_error: lastError,
        last_error_unix: now - 600,
      },
    } as { connection: string });
    await route.fulfill({ response: real, json: list });
  });
  await login(page, `/#/t/${encodeURIComponent(s.tenant)}/connections/hub-branch`);
  const card = page.getByTestId('ipsec-status');
  await expect(card.getByRole('heading', { name: 'IPsec status' })).toBeVisible();
  await expect(card.getByTestId('ike-state')).toHaveText('established');
  await expect(card.getByTestId('ike-proposal')).toHaveText('aes256gcm16-prfsha384-ecp384');
  await expect(card.getByTestId('ike-spis')).toHaveText('0a1b2c3d4e5f6071_8192a3b4c5d6e7f8');
  await expect(card.getByTestId('ike-role')).toHaveText('initiator');
  await expect(card.getByTestId('ike-rekeys')).toHaveText('2');
  const child = card.getByRole('list', { name: 'CHILD SAs' }).getByRole('listitem').filter({ hasText: 'c1a2b3d4' });
  await expect(child).toContainText('d4c3b2a1');
  await expect(child).toContainText('aes256gcm16');
  await expect(child).toContainText('0.0.0.0/0 === 0.0.0.0/0');
  await expect(child).toContainText('::/0 === ::/0');
  await expect(child).toContainText('1.5 MB');
  await expect(child).toContainText('2100');
  await expect(card.getByTestId('ipsec-last-error')).toHaveText('AUTHENTICATION_FAILED');
  await expect(card.getByTestId('ipsec-error-help')).toContainText("this connection's shared key as its PSK");
  await shot(page, 'ipsec-status');

  // Each kind of error says what to check (the page samples the status every 2 s).
  for (const [error, help] of [
    ['NO_PROPOSAL_CHOSEN', 'No common proposal'],
    ['TS_UNACCEPTABLE', 'traffic selectors were refused'],
    ['DEAD_PEER', 'The device does not answer'],
  ] as const) {
    lastError = error;
    await expect(card.getByTestId('ipsec-last-error')).toHaveText(error);
    await expect(card.getByTestId('ipsec-error-help')).toContainText(help);
  }

  lastError = 'AUTHENTICATION_FAILED';
  await page.getByRole('combobox', { name: 'Language' }).selectOption('ja');
  await expect(card.getByRole('heading', { name: 'IPsec の状態' })).toBeVisible();
  await expect(card.getByTestId('ike-state')).toHaveText('確立済み');
  await expect(card.getByTestId('ike-role')).toHaveText('イニシエーター');
  await expect(card.getByRole('list', { name: 'CHILD SA' })).toContainText('受信 SPI');
  await expect(card.getByTestId('ipsec-last-error')).toHaveText('AUTHENTICATION_FAILED');
  await expect(card.getByTestId('ipsec-error-help')).toContainText('共有キーを PSK として使っていること');
  await shot(page, 'ipsec-status-ja');
});
