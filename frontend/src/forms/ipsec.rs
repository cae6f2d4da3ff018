//! The IPsec part of the connection form (issue 17): the tunnel protocol of a site-to-site
//! connection and, for IPsec, its connection mode and optional custom IPsec/IKE policy (one IKE
//! proposal, one ESP cipher, the SA lifetimes). Every value the model knows is offered; the
//! shared validator (IPSEC-*) judges the draft like every other rule.

use isthmus_shared::model::{
    Connection, DEFAULT_ESP_CIPHERS, DEFAULT_IKE_PROPOSALS, IkeProposal, IpsecCipher,
    IpsecConnectionMode, IpsecDhGroup, IpsecPolicy, IpsecPrf, TunnelProtocol,
};
use leptos::prelude::*;

use super::Problem;
use super::widgets::{CheckField, Field, SelectField};
use super::{Live, Problems};
use crate::i18n::Key;
use crate::state::ctx;

/// The field keys of the IPsec inputs, as paths below the connection (violations at
/// `ipsec_policy` itself, or at `ipsec_policy.ike`, are shown at the custom-policy checkbox).
pub(super) const FIELDS: &[&str] = &[
    "protocol",
    "connection_mode",
    "ipsec_policy",
    "ipsec_policy.ike.cipher",
    "ipsec_policy.ike.prf",
    "ipsec_policy.ike.dh_group",
    "ipsec_policy.esp_cipher",
    "ipsec_policy.ike_lifetime_secs",
    "ipsec_policy.child_lifetime_secs",
    "ipsec_policy.child_lifetime_kilobytes",
];

/// The select value of a connection mode (its serde name).
pub fn mode_value(m: IpsecConnectionMode) -> &'static str {
    match m {
        IpsecConnectionMode::Default => "Default",
        IpsecConnectionMode::InitiatorOnly => "InitiatorOnly",
        IpsecConnectionMode::ResponderOnly => "ResponderOnly",
    }
}

/// The label of a connection mode.
pub fn mode_key(m: IpsecConnectionMode) -> Key {
    match m {
        IpsecConnectionMode::Default => Key::ModeDefault,
        IpsecConnectionMode::InitiatorOnly => Key::ModeInitiatorOnly,
        IpsecConnectionMode::ResponderOnly => Key::ModeResponderOnly,
    }
}

/// The label of a tunnel protocol.
pub fn protocol_key(p: TunnelProtocol) -> Key {
    match p {
        TunnelProtocol::WireGuard => Key::ProtocolWireGuard,
        TunnelProtocol::IPsec => Key::ProtocolIpsec,
    }
}

const MODES: [IpsecConnectionMode; 3] = [
    IpsecConnectionMode::Default,
    IpsecConnectionMode::InitiatorOnly,
    IpsecConnectionMode::ResponderOnly,
];

fn mode_of(v: &str) -> IpsecConnectionMode {
    MODES
        .into_iter()
        .find(|m| mode_value(*m) == v)
        .unwrap_or_default()
}

/// The value of `all` whose keyword is `v`.
fn by_keyword<T: Copy>(all: &[T], keyword: fn(T) -> &'static str, v: &str) -> Option<T> {
    all.iter().copied().find(|x| keyword(*x) == v)
}

/// Select options of keyword values: the keyword is value and label (it reads the same in
/// every language, as in `swanctl.conf`).
fn keyword_options<T: Copy>(all: &[T], keyword: fn(T) -> &'static str) -> Vec<(String, String)> {
    all.iter()
        .map(|x| (keyword(*x).to_owned(), keyword(*x).to_owned()))
        .collect()
}

/// A lifetime input: empty is `None` (the default); anything but a whole number does not parse.
fn parse_number<T: std::str::FromStr>(
    text: &str,
    field: &str,
    expect: Key,
    parse: &mut Vec<(String, Problem)>,
) -> Option<T> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match t.replace([',', '_'], "").parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            parse.push((field.to_owned(), Problem::input(t, expect)));
            None
        }
    }
}

/// The inputs of the IPsec part of the form.
#[derive(Clone, Copy)]
pub(super) struct IpsecInputs {
    protocol: RwSignal<String>,
    mode: RwSignal<String>,
    custom: RwSignal<bool>,
    ike_cipher: RwSignal<String>,
    prf: RwSignal<String>,
    dh_group: RwSignal<String>,
    esp_cipher: RwSignal<String>,
    ike_lifetime: RwSignal<String>,
    child_lifetime: RwSignal<String>,
    child_kilobytes: RwSignal<String>,
}

impl IpsecInputs {
    /// The inputs as `old` has them (a new connection: WireGuard; a new custom policy starts
    /// at the first default proposal).
    pub fn new(old: Option<&Connection>) -> Self {
        let policy = old.and_then(|c| c.ipsec_policy.as_ref());
        let ike = policy.map_or(DEFAULT_IKE_PROPOSALS[0], |p| p.ike);
        let esp = policy.map_or(DEFAULT_ESP_CIPHERS[0], |p| p.esp_cipher);
        let num = |v: Option<String>| RwSignal::new(v.unwrap_or_default());
        Self {
            protocol: RwSignal::new(
                old.map(|c| c.protocol)
                    .unwrap_or_default()
                    .as_str()
                    .to_owned(),
            ),
            mode: RwSignal::new(
                mode_value(old.map(|c| c.connection_mode).unwrap_or_default()).to_owned(),
            ),
            custom: RwSignal::new(policy.is_some()),
            ike_cipher: RwSignal::new(ike.cipher.keyword().to_owned()),
            prf: RwSignal::new(ike.prf.keyword().to_owned()),
            dh_group: RwSignal::new(ike.dh_group.keyword().to_owned()),
            esp_cipher: RwSignal::new(esp.keyword().to_owned()),
            ike_lifetime: num(policy
                .and_then(|p| p.ike_lifetime_secs)
                .map(|v| v.to_string())),
            child_lifetime: num(policy
                .and_then(|p| p.child_lifetime_secs)
                .map(|v| v.to_string())),
            child_kilobytes: num(policy
                .and_then(|p| p.child_lifetime_kilobytes)
                .map(|v| v.to_string())),
        }
    }

    fn ipsec(&self) -> bool {
        self.protocol.with(|p| p == TunnelProtocol::IPsec.as_str())
    }

    /// What the inputs say, tracked: the protocol, the custom policy and the connection mode
    /// of a site-to-site connection (`site_to_site` false: WireGuard, nothing else); inputs
    /// that do not parse go to `parse`.
    pub fn read(
        &self,
        site_to_site: bool,
        parse: &mut Vec<(String, Problem)>,
    ) -> (TunnelProtocol, Option<IpsecPolicy>, IpsecConnectionMode) {
        if !site_to_site || !self.ipsec() {
            return (
                TunnelProtocol::WireGuard,
                None,
                IpsecConnectionMode::Default,
            );
        }
        let mode = self.mode.with(|m| mode_of(m));
        if !self.custom.get() {
            return (TunnelProtocol::IPsec, None, mode);
        }
        let d = DEFAULT_IKE_PROPOSALS[0];
        let ike = IkeProposal {
            cipher: self
                .ike_cipher
                .with(|v| by_keyword(IpsecCipher::ALL, IpsecCipher::keyword, v))
                .unwrap_or(d.cipher),
            prf: self
                .prf
                .with(|v| by_keyword(IpsecPrf::ALL, IpsecPrf::keyword, v))
                .unwrap_or(d.prf),
            dh_group: self
                .dh_group
                .with(|v| by_keyword(IpsecDhGroup::ALL, IpsecDhGroup::keyword, v))
                .unwrap_or(d.dh_group),
        };
        let esp_cipher = self
            .esp_cipher
            .with(|v| by_keyword(IpsecCipher::ALL, IpsecCipher::keyword, v))
            .unwrap_or(DEFAULT_ESP_CIPHERS[0]);
        let policy = IpsecPolicy {
            ike,
            esp_cipher,
            ike_lifetime_secs: parse_number(
                &self.ike_lifetime.get(),
                "ipsec_policy.ike_lifetime_secs",
                Key::ExpectSeconds,
                parse,
            ),
            child_lifetime_secs: parse_number(
                &self.child_lifetime.get(),
                "ipsec_policy.child_lifetime_secs",
                Key::ExpectSeconds,
                parse,
            ),
            child_lifetime_kilobytes: parse_number(
                &self.child_kilobytes.get(),
                "ipsec_policy.child_lifetime_kilobytes",
                Key::ExpectKilobytes,
                parse,
            ),
        };
        (TunnelProtocol::IPsec, Some(policy), mode)
    }
}

/// The protocol select and, for IPsec, the mode and the custom policy. Shown only for
/// site-to-site connections (VNet-to-VNet is WireGuard).
#[component]
pub(super) fn IpsecFields(live: Live, inputs: IpsecInputs) -> impl IntoView {
    let c = ctx();
    let protocols = Signal::derive(move || {
        [TunnelProtocol::WireGuard, TunnelProtocol::IPsec]
            .into_iter()
            .map(|p| (p.as_str().to_owned(), c.t(protocol_key(p)).to_owned()))
            .collect::<Vec<_>>()
    });
    let modes = Signal::derive(move || {
        MODES
            .into_iter()
            .map(|m| (mode_value(m).to_owned(), c.t(mode_key(m)).to_owned()))
            .collect::<Vec<_>>()
    });
    let ciphers = Signal::derive(|| keyword_options(IpsecCipher::ALL, IpsecCipher::keyword));
    let prfs = Signal::derive(|| keyword_options(IpsecPrf::ALL, IpsecPrf::keyword));
    let groups = Signal::derive(|| keyword_options(IpsecDhGroup::ALL, IpsecDhGroup::keyword));
    let i = inputs;
    view! {
        <SelectField
            live=live
            field="protocol"
            label=Key::Protocol
            value=i.protocol
            options=protocols
            hint=Key::ProtocolHint
        />
        <Show when=move || i.ipsec()>
            <div class="ipsec-fields" data-testid="ipsec-fields">
                <SelectField
                    live=live
                    field="connection_mode"
                    label=Key::ConnectionMode
                    value=i.mode
                    options=modes
                />
                <CheckField
                    live=live
                    field="ipsec_policy"
                    label=Key::CustomPolicy
                    value=i.custom
                    hint=Key::CustomPolicyHint
                />
                <Show when=move || i.custom.get()>
                    <SelectField
                        live=live
                        field="ipsec_policy.ike.cipher"
                        label=Key::IkeCipher
                        value=i.ike_cipher
                        options=ciphers
                    />
                    <SelectField
                        live=live
                        field="ipsec_policy.ike.prf"
                        label=Key::IkePrf
                        value=i.prf
                        options=prfs
                    />
                    <SelectField
                        live=live
                        field="ipsec_policy.ike.dh_group"
                        label=Key::IkeDhGroup
                        value=i.dh_group
                        options=groups
                    />
                    <SelectField
                        live=live
                        field="ipsec_policy.esp_cipher"
                        label=Key::EspCipher
                        value=i.esp_cipher
                        options=ciphers
                    />
                    <Field
                        live=live
                        field="ipsec_policy.ike_lifetime_secs"
                        label=Key::IkeLifetime
                        value=i.ike_lifetime
                        hint=Key::IkeLifetimeHint
                    />
                    <Field
                        live=live
                        field="ipsec_policy.child_lifetime_secs"
                        label=Key::ChildLifetime
                        value=i.child_lifetime
                        hint=Key::ChildLifetimeHint
                    />
                    <Field
                        live=live
                        field="ipsec_policy.child_lifetime_kilobytes"
                        label=Key::ChildKilobytes
                        value=i.child_kilobytes
                        hint=Key::ChildKilobytesHint
                    />
                </Show>
            </div>
        </Show>
        // Violations of the IPsec settings of a connection that is not IPsec (IPSEC-1 on a
        // VNet-to-VNet connection) stay visible when the inputs are hidden.
        <Show when=move || !i.ipsec()>
            <Problems live=live form="form" field="connection_mode".to_owned() />
            <Problems live=live form="form" field="ipsec_policy".to_owned() />
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use isthmus_shared::model::{
        DEFAULT_CHILD_LIFETIME_SECS, DEFAULT_IKE_LIFETIME_SECS, MAX_CHILD_LIFETIME_KILOBYTES,
        MAX_SA_LIFETIME_SECS, MIN_CHILD_LIFETIME_KILOBYTES, MIN_SA_LIFETIME_SECS,
    };

    use super::*;
    use crate::i18n::{Lang, t};

    /// `n` as the hints write it: 28,800.
    fn grouped(n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    }

    /// IPSEC-3's bounds and the defaults, as the hints state them in both languages, are the
    /// model's.
    #[test]
    fn the_lifetime_hints_state_the_models_bounds_and_defaults() {
        let secs = [
            u64::from(MIN_SA_LIFETIME_SECS),
            u64::from(MAX_SA_LIFETIME_SECS),
        ];
        for lang in [Lang::En, Lang::Ja] {
            for (key, default) in [
                (Key::IkeLifetimeHint, DEFAULT_IKE_LIFETIME_SECS),
                (Key::ChildLifetimeHint, DEFAULT_CHILD_LIFETIME_SECS),
            ] {
                let text = t(lang, key);
                for n in secs.into_iter().chain([u64::from(default)]) {
                    assert!(text.contains(&grouped(n)), "{key:?} {lang:?}: {text}");
                }
            }
            let kb = t(lang, Key::ChildKilobytesHint);
            for n in [MIN_CHILD_LIFETIME_KILOBYTES, MAX_CHILD_LIFETIME_KILOBYTES] {
                assert!(kb.contains(&grouped(n)), "{lang:?}: {kb}");
            }
            let policy = t(lang, Key::CustomPolicyHint);
            for n in [DEFAULT_IKE_LIFETIME_SECS, DEFAULT_CHILD_LIFETIME_SECS] {
                assert!(
                    policy.contains(&grouped(u64::from(n))),
                    "{lang:?}: {policy}"
                );
            }
        }
    }

    /// A site-to-site connection is WireGuard until IPsec is chosen; a custom policy carries
    /// the chosen algorithms and lifetimes; a VNet-to-VNet connection is always WireGuard.
    #[test]
    fn the_inputs_read_as_the_protocol_the_policy_and_the_mode() {
        let i = IpsecInputs::new(None);
        let mut parse = Vec::new();
        assert_eq!(
            i.read(true, &mut parse),
            (
                TunnelProtocol::WireGuard,
                None,
                IpsecConnectionMode::Default
            )
        );
        i.protocol.set("IPsec".to_owned());
        i.mode.set("ResponderOnly".to_owned());
        assert_eq!(
            i.read(true, &mut parse),
            (
                TunnelProtocol::IPsec,
                None,
                IpsecConnectionMode::ResponderOnly
            )
        );
        i.custom.set(true);
        i.ike_cipher.set("chacha20poly1305".to_owned());
        i.prf.set("prfsha256".to_owned());
        i.dh_group.set("curve25519".to_owned());
        i.esp_cipher.set("aes128gcm16".to_owned());
        i.ike_lifetime.set("30".to_owned());
        i.child_kilobytes.set("4096".to_owned());
        let (p, policy, _) = i.read(true, &mut parse);
        assert_eq!(p, TunnelProtocol::IPsec);
        assert_eq!(
            policy,
            Some(IpsecPolicy {
                ike: IkeProposal {
                    cipher: IpsecCipher::ChaCha20Poly1305,
                    prf: IpsecPrf::HmacSha256,
                    dh_group: IpsecDhGroup::Curve25519,
                },
                esp_cipher: IpsecCipher::Aes128Gcm16,
                ike_lifetime_secs: Some(30),
                child_lifetime_secs: None,
                child_lifetime_kilobytes: Some(4096),
            })
        );
        assert!(parse.is_empty());
        assert_eq!(
            i.read(false, &mut parse),
            (
                TunnelProtocol::WireGuard,
                None,
                IpsecConnectionMode::Default
            )
        );
        // An edit form starts from the stored connection's values.
        let stored = Connection {
            tenant: "acme".to_owned(),
            name: "hub-branch".to_owned(),
            gateway: "hub-gw".to_owned(),
            kind: isthmus_shared::model::ConnectionKind::SiteToSite {
                site: "branch".to_owned(),
            },
            shared_key: None,
            enabled: true,
            traffic_selectors: Vec::new(),
            protocol: TunnelProtocol::IPsec,
            ipsec_policy: policy.clone(),
            connection_mode: IpsecConnectionMode::InitiatorOnly,
        };
        let again = IpsecInputs::new(Some(&stored));
        assert_eq!(
            again.read(true, &mut parse),
            (
                TunnelProtocol::IPsec,
                policy,
                IpsecConnectionMode::InitiatorOnly
            )
        );
    }

    #[test]
    fn every_mode_reads_back_from_its_select_value() {
        for m in MODES {
            assert_eq!(mode_of(mode_value(m)), m);
        }
        assert_eq!(mode_of("nonsense"), IpsecConnectionMode::Default);
    }

    #[test]
    fn every_algorithm_is_offered_and_reads_back_from_its_keyword() {
        for &x in IpsecCipher::ALL {
            assert_eq!(
                by_keyword(IpsecCipher::ALL, IpsecCipher::keyword, x.keyword()),
                Some(x)
            );
        }
        for &x in IpsecPrf::ALL {
            assert_eq!(
                by_keyword(IpsecPrf::ALL, IpsecPrf::keyword, x.keyword()),
                Some(x)
            );
        }
        for &x in IpsecDhGroup::ALL {
            assert_eq!(
                by_keyword(IpsecDhGroup::ALL, IpsecDhGroup::keyword, x.keyword()),
                Some(x)
            );
        }
        assert_eq!(
            keyword_options(IpsecDhGroup::ALL, IpsecDhGroup::keyword).len(),
            4
        );
        assert_eq!(by_keyword(IpsecPrf::ALL, IpsecPrf::keyword, "md5"), None);
    }

    #[test]
    fn a_lifetime_is_empty_a_whole_number_or_a_parse_problem() {
        let mut parse = Vec::new();
        let f = "ipsec_policy.ike_lifetime_secs";
        assert_eq!(
            parse_number::<u32>("", f, Key::ExpectSeconds, &mut parse),
            None
        );
        assert_eq!(
            parse_number::<u32>(" 3,600 ", f, Key::ExpectSeconds, &mut parse),
            Some(3600)
        );
        assert!(parse.is_empty());
        assert_eq!(
            parse_number::<u32>("1h", f, Key::ExpectSeconds, &mut parse),
            None
        );
        assert_eq!(
            parse_number::<u32>("-5", f, Key::ExpectSeconds, &mut parse),
            None
        );
        assert_eq!(parse.len(), 2);
        assert!(
            parse
                .iter()
                .all(|(k, p)| k == f && p.expect == Some(Key::ExpectSeconds))
        );
    }

    /// The shared validator's IPsec violations land on the form's IPsec fields: IPSEC-3 at the
    /// lifetime it is about, IPSEC-4 at the site's IKE identity.
    #[test]
    fn ipsec_violations_are_placed_on_the_ipsec_fields() {
        use isthmus_shared::builder::TopologyBuilder;
        use isthmus_shared::model::{GatewayType, Kind, Sku};
        use isthmus_shared::rules::RuleId;

        let t = TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16"])
            .gateway_subnet("hub", "10.0.255.0/27")
            .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
            .site("branch", "203.0.113.10", &["192.168.1.0/24"])
            .edit_site("branch", |s| {
                s.ike_identity = Some("not an identity".to_owned())
            })
            .s2s("hub-branch", "hub-gw", "branch")
            .edit_connection("hub-branch", |c| {
                c.protocol = TunnelProtocol::IPsec;
                c.ipsec_policy = Some(IpsecPolicy {
                    ike: DEFAULT_IKE_PROPOSALS[0],
                    esp_cipher: DEFAULT_ESP_CIPHERS[0],
                    ike_lifetime_secs: Some(30),
                    child_lifetime_secs: Some(3_600),
                    child_lifetime_kilobytes: Some(10),
                });
            })
            .build()
            .expect("a topology");
        let violations = isthmus_shared::validate::validate(&t);
        let resource = |kind, name: &str| super::super::Resource {
            kind,
            tenant: "acme".to_owned(),
            name: name.to_owned(),
        };
        let conn = resource(Kind::Connection, "hub-branch");
        let mut fields: Vec<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
        fields.push("kind.site".to_owned());
        let mut placed: Vec<(RuleId, Option<String>)> = violations
            .iter()
            .filter(|v| v.rule == RuleId::Ipsec3)
            .map(|v| (v.rule, super::super::assign(&conn, "name", &fields, v)))
            .collect();
        placed.sort();
        assert_eq!(
            placed,
            vec![
                (
                    RuleId::Ipsec3,
                    Some("ipsec_policy.child_lifetime_kilobytes".to_owned())
                ),
                (
                    RuleId::Ipsec3,
                    Some("ipsec_policy.ike_lifetime_secs".to_owned())
                ),
            ]
        );
        let site = resource(Kind::Site, "branch");
        let site_fields = vec!["device_host".to_owned(), "ike_identity".to_owned()];
        let ipsec4: Vec<Option<String>> = violations
            .iter()
            .filter(|v| v.rule == RuleId::Ipsec4)
            .map(|v| super::super::assign(&site, "name", &site_fields, v))
            .collect();
        assert_eq!(ipsec4, vec![Some("ike_identity".to_owned())]);
    }
}
