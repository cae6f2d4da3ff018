//! Terms (param values that are words: kinds of resources, kinds of addresses, ...) and the
//! phrases made of several params.

use std::collections::BTreeMap;

use super::{Lang, fill_with, value};

/// (param, value, English, Japanese). An English text equal to the value is still listed, so a
/// value without a row is known not to be a term.
const TERMS: &[(&str, &str, &str, &str)] = &[
    // Kinds of resources (NAME-1, NAME-2, REF-1).
    ("kind", "tenant", "tenant", "テナント"),
    ("kind", "VNet", "VNet", "VNet"),
    ("kind", "gateway", "gateway", "ゲートウェイ"),
    ("kind", "site", "site", "サイト"),
    ("kind", "connection", "connection", "接続"),
    ("kind", "subnet", "subnet", "サブネット"),
    ("kind", "client", "client", "クライアント"),
    (
        "kind",
        "point-to-site configuration",
        "point-to-site configuration",
        "ポイント対サイト構成",
    ),
    ("used_by_kind", "gateway", "gateway", "ゲートウェイ"),
    ("used_by_kind", "connection", "connection", "接続"),
    (
        "used_by_kind",
        "point-to-site configuration",
        "point-to-site configuration",
        "ポイント対サイト構成",
    ),
    (
        "used_by_kind",
        "the point-to-site configuration of gateway",
        "the point-to-site configuration of gateway",
        "ゲートウェイのポイント対サイト構成",
    ),
    // GW-10: unreachable endpoints.
    ("kind", "loopback", "loopback", "ループバック"),
    ("kind", "unspecified", "unspecified", "未指定"),
    ("kind", "link-local", "link-local", "リンクローカル"),
    // CONN-4: device addresses.
    (
        "problem",
        "unspecified",
        "unspecified (0.0.0.0)",
        "未指定アドレス (0.0.0.0)",
    ),
    (
        "problem",
        "broadcast",
        "the broadcast address",
        "ブロードキャスト アドレス",
    ),
    (
        "problem",
        "multicast",
        "a multicast address",
        "マルチキャスト アドレス",
    ),
    (
        "problem",
        "this_network",
        "in 0.0.0.0/8 (\"this network\")",
        "0.0.0.0/8 (「このネットワーク」) 内のアドレス",
    ),
    (
        "problem",
        "loopback",
        "a loopback address",
        "ループバック アドレス",
    ),
    (
        "problem",
        "private",
        "a private (RFC 1918) address",
        "プライベート アドレス (RFC 1918)",
    ),
    (
        "problem",
        "link_local",
        "a link-local address",
        "リンクローカル アドレス",
    ),
    (
        "problem",
        "cgnat",
        "a carrier-grade NAT (100.64.0.0/10) address",
        "キャリアグレード NAT (100.64.0.0/10) のアドレス",
    ),
    // KEY-1
    (
        "what",
        "device public key",
        "device public key",
        "デバイスの公開鍵",
    ),
    (
        "what",
        "gateway public key",
        "gateway public key",
        "ゲートウェイの公開鍵",
    ),
    (
        "what",
        "client public key",
        "client public key",
        "クライアントの公開鍵",
    ),
    // GW-6
    ("end", "local", "local", "ローカル側"),
    ("end", "remote", "remote", "リモート側"),
    // PFX-4 to PFX-8: the list a prefix is in.
    (
        "list",
        "address_space",
        "a VNet address space",
        "VNet のアドレス空間",
    ),
    (
        "list",
        "address_prefixes",
        "a site's address prefixes",
        "サイトのアドレス プレフィックス",
    ),
    (
        "list",
        "address_pool",
        "a point-to-site address pool",
        "ポイント対サイトのアドレス プール",
    ),
    // CONN-2 statuses.
    (
        "status",
        "waiting for the other half",
        "waiting for the other half",
        "相手側の作成待ち",
    ),
    ("status", "key mismatch", "key mismatch", "共有キーの不一致"),
];

/// The text of term `value` of param `key` in `lang`.
pub(super) fn term(lang: Lang, key: &str, value: &str) -> Option<&'static str> {
    TERMS
        .iter()
        .find(|(k, v, _, _)| *k == key && *v == value)
        .map(|(_, _, en, ja)| match lang {
            Lang::En => *en,
            Lang::Ja => *ja,
        })
}

/// The reserved ranges of PFX-5 to PFX-8: (net, what in English, why in English, what in
/// Japanese, why in Japanese).
const RESERVED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "0.0.0.0/8",
        "the unspecified range 0.0.0.0/8 (\"this network\")",
        "no host is reached at these addresses",
        "未指定の範囲 0.0.0.0/8 (「このネットワーク」)",
        "これらのアドレスで到達できるホストはありません",
    ),
    (
        "::/128",
        "the unspecified address ::",
        "no host is reached at it",
        "未指定アドレス ::",
        "このアドレスで到達できるホストはありません",
    ),
    (
        "127.0.0.0/8",
        "the loopback range 127.0.0.0/8",
        "loopback addresses never leave a host",
        "ループバックの範囲 127.0.0.0/8",
        "ループバック アドレスはホストの外に出ません",
    ),
    (
        "::1/128",
        "the loopback address ::1",
        "loopback addresses never leave a host",
        "ループバック アドレス ::1",
        "ループバック アドレスはホストの外に出ません",
    ),
    (
        "169.254.0.0/16",
        "the link-local range 169.254.0.0/16",
        "link-local addresses are not routed beyond one link",
        "リンクローカルの範囲 169.254.0.0/16",
        "リンクローカル アドレスは 1 つのリンクの外にルーティングされません",
    ),
    (
        "fe80::/10",
        "the link-local range fe80::/10",
        "link-local addresses are not routed beyond one link",
        "リンクローカルの範囲 fe80::/10",
        "リンクローカル アドレスは 1 つのリンクの外にルーティングされません",
    ),
    (
        "224.0.0.0/4",
        "the multicast range 224.0.0.0/4",
        "multicast is not carried through tunnels",
        "マルチキャストの範囲 224.0.0.0/4",
        "マルチキャストはトンネルで運ばれません",
    ),
    (
        "ff00::/8",
        "the multicast range ff00::/8",
        "multicast is not carried through tunnels",
        "マルチキャストの範囲 ff00::/8",
        "マルチキャストはトンネルで運ばれません",
    ),
];

/// One template per language.
fn pick(lang: Lang, en: &'static str, ja: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Ja => ja,
    }
}

/// The phrase for an owner of address space whose params start with `prefix` (`owner_kind`,
/// `owner_name`, `owner_tenant`): "VNet \"hub\" (tenant \"acme\")".
fn owner(lang: Lang, prefix: &str, params: &BTreeMap<String, String>) -> Option<String> {
    let get = |k: &str| params.get(&format!("{prefix}_{k}")).cloned();
    let kind = get("kind")?;
    let name = get("name")?;
    let tenant = get("tenant").unwrap_or_default();
    let t = match kind.as_str() {
        "vnet" => pick(lang, "VNet \"{name}\"", "VNet「{name}」"),
        "site" => pick(lang, "site \"{name}\"", "サイト「{name}」"),
        _ => pick(
            lang,
            "the point-to-site pool of gateway \"{name}\"",
            "ゲートウェイ「{name}」のポイント対サイト アドレス プール",
        ),
    };
    let mut out = fill_with(t, &|k| (k == "name").then(|| name.clone()));
    if !tenant.is_empty() {
        let suffix = pick(lang, " (tenant \"{tenant}\")", " (テナント「{tenant}」)");
        out.push_str(&fill_with(suffix, &|k| {
            (k == "tenant").then(|| tenant.clone())
        }));
    }
    Some(out)
}

/// A placeholder that is no param but a phrase of several.
pub(super) fn derived(lang: Lang, key: &str, params: &BTreeMap<String, String>) -> Option<String> {
    let p = |k: &str| params.get(k).cloned();
    match key {
        "owner" => owner(lang, "owner", params),
        "other" => owner(lang, "other", params),
        // P2S-6: each side is "PREFIX of OWNER", or another tenant's space (neither named).
        "side" | "other_side" => {
            let (pk, ok) = if key == "side" {
                ("prefix", "owner")
            } else {
                ("other_prefix", "other")
            };
            match (p(pk), owner(lang, ok, params)) {
                (Some(pr), Some(o)) => {
                    let t = pick(lang, "{prefix} of {owner}", "{owner} の {prefix}");
                    Some(fill_with(t, &|k| match k {
                        "prefix" => Some(pr.clone()),
                        "owner" => Some(o.clone()),
                        _ => None,
                    }))
                }
                _ => Some(
                    pick(
                        lang,
                        "an address space of another tenant that this connection reaches",
                        "この接続から到達する他のテナントのアドレス空間",
                    )
                    .to_owned(),
                ),
            }
        }
        // PFX-4 to PFX-8: what to use instead.
        "private" => {
            let family = p("family")?;
            let example = p("example")?;
            let t = if family == "IPv4" {
                pick(
                    lang,
                    "a private range such as {example} (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
                    "{example} のようなプライベート範囲 (10.0.0.0/8、172.16.0.0/12、192.168.0.0/16)",
                )
            } else {
                pick(
                    lang,
                    "a unique local range such as fd00:1::/48 (fc00::/7) or your global prefix",
                    "fd00:1::/48 のようなユニーク ローカル範囲 (fc00::/7) または自組織のグローバル プレフィックス",
                )
            };
            Some(fill_with(t, &|k| (k == "example").then(|| example.clone())))
        }
        "reserved_what" | "reserved_why" => {
            let net = p("reserved")?;
            let r = RESERVED.iter().find(|r| r.0 == net)?;
            Some(
                match (key, lang) {
                    ("reserved_what", Lang::En) => r.1,
                    ("reserved_why", Lang::En) => r.2,
                    ("reserved_what", Lang::Ja) => r.3,
                    _ => r.4,
                }
                .to_owned(),
            )
        }
        // GW-5: a character, as Rust's Debug shows it in the English message.
        "char_quoted" => p("char").map(|c| {
            let c = c.chars().next().unwrap_or(' ');
            format!("{c:?}")
        }),
        _ => {
            // `X_names`: the list of names in param X (", "-separated, as the English message
            // shows them); in Japanese each name in 「」, separated by "、".
            if let Some(base) = key.strip_suffix("_names") {
                let list = p(base)?;
                return Some(match lang {
                    Lang::En => list,
                    Lang::Ja => list
                        .split(", ")
                        .map(|n| format!("「{}」", n.trim_matches('"')))
                        .collect::<Vec<_>>()
                        .join("、"),
                });
            }
            // `X_term`: the term param X rendered (never used as a template name otherwise).
            let base = key.strip_suffix("_term")?;
            value(lang, base, params)
        }
    }
}
