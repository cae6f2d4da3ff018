//! Routes and the next hop in the user's language: route origins and next hops (the effective
//! routes table), locations, hop reasons and outcomes (the next-hop tool), and its errors.
//!
//! The English hop reason equals `Hop::reason` (a test walks many paths and compares).

use super::{Lang, fill_with};
use crate::routes::{HopReason, Location, NextHop, NextHopError, Outcome, RouteOrigin};

/// One template per language, filled from `args`.
fn tr(lang: Lang, en: &'static str, ja: &'static str, args: &[(&str, String)]) -> String {
    let t = match lang {
        Lang::En => en,
        Lang::Ja => ja,
    };
    fill_with(t, &|k| {
        args.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

/// Why a route exists (the routes table's origin column).
pub fn route_origin(o: &RouteOrigin, lang: Lang) -> String {
    match o {
        RouteOrigin::VnetAddressSpace { vnet } => tr(
            lang,
            "VNet address space {vnet}",
            "VNet {vnet} のアドレス空間",
            &[("vnet", s(vnet))],
        ),
        RouteOrigin::P2sClient { client, gateway } => tr(
            lang,
            "P2S client {client}",
            "ポイント対サイト クライアント {client} ({gateway})",
            &[("client", s(client)), ("gateway", s(gateway))],
        ),
        RouteOrigin::P2sPool { gateway } => tr(
            lang,
            "P2S pool of {gateway}",
            "{gateway} のポイント対サイト アドレス プール",
            &[("gateway", s(gateway))],
        ),
        RouteOrigin::TrafficSelector { connection } => tr(
            lang,
            "traffic selector of {connection}",
            "{connection} のトラフィック セレクター",
            &[("connection", s(connection))],
        ),
        RouteOrigin::Site { site } => {
            tr(lang, "site {site}", "サイト {site}", &[("site", s(site))])
        }
        RouteOrigin::RemoteVnet { vnet } => {
            tr(lang, "VNet {vnet}", "VNet {vnet}", &[("vnet", s(vnet))])
        }
        RouteOrigin::RouteSource { source } => tr(
            lang,
            "route source {source}",
            "ルート ソース {source}",
            &[("source", s(source))],
        ),
        RouteOrigin::Default => tr(lang, "default", "既定ルート", &[]),
    }
}

/// A route origin inside a hop reason (English: "the address space of VNet acme/hub").
fn origin_phrase(o: &RouteOrigin, lang: Lang) -> String {
    match o {
        RouteOrigin::VnetAddressSpace { vnet } => tr(
            lang,
            "the address space of VNet {vnet}",
            "VNet {vnet} のアドレス空間",
            &[("vnet", s(vnet))],
        ),
        RouteOrigin::P2sClient { client, .. } => tr(
            lang,
            "point-to-site client \"{client}\"",
            "ポイント対サイト クライアント「{client}」",
            &[("client", s(client))],
        ),
        RouteOrigin::P2sPool { gateway } => tr(
            lang,
            "the point-to-site pool of gateway {gateway}",
            "ゲートウェイ {gateway} のポイント対サイト アドレス プール",
            &[("gateway", s(gateway))],
        ),
        RouteOrigin::TrafficSelector { connection } => tr(
            lang,
            "a traffic selector of connection {connection}",
            "接続 {connection} のトラフィック セレクター",
            &[("connection", s(connection))],
        ),
        RouteOrigin::Site { site } => {
            tr(lang, "site {site}", "サイト {site}", &[("site", s(site))])
        }
        RouteOrigin::RemoteVnet { vnet } => {
            tr(lang, "VNet {vnet}", "VNet {vnet}", &[("vnet", s(vnet))])
        }
        RouteOrigin::RouteSource { source } => tr(
            lang,
            "route source \"{source}\"",
            "ルート ソース「{source}」",
            &[("source", s(source))],
        ),
        RouteOrigin::Default => tr(lang, "the default route", "既定ルート", &[]),
    }
}

/// Where a route sends a packet (the routes table's next-hop column, a hop's target).
pub fn next_hop(h: &NextHop, lang: Lang) -> String {
    match h {
        NextHop::Vnet { vnet } => tr(lang, "VNet {vnet}", "VNet {vnet}", &[("vnet", s(vnet))]),
        NextHop::Gateway { gateway } => tr(
            lang,
            "gateway {gateway}",
            "ゲートウェイ {gateway}",
            &[("gateway", s(gateway))],
        ),
        NextHop::SiteToSite { connection, site } => tr(
            lang,
            "site-to-site {connection} → site {site}",
            "サイト対サイト接続 {connection} → サイト {site}",
            &[("connection", s(connection)), ("site", s(site))],
        ),
        NextHop::VnetToVnet {
            connection,
            remote_gateway,
        } => tr(
            lang,
            "VNet-to-VNet {connection} → gateway {remote_gateway}",
            "VNet 対 VNet 接続 {connection} → ゲートウェイ {remote_gateway}",
            &[
                ("connection", s(connection)),
                ("remote_gateway", s(remote_gateway)),
            ],
        ),
        NextHop::P2sClient { client, gateway } => tr(
            lang,
            "P2S client {client} ({gateway})",
            "ポイント対サイト クライアント {client} ({gateway})",
            &[("client", s(client)), ("gateway", s(gateway))],
        ),
        NextHop::RouteSource { vnet, source } => tr(
            lang,
            "route source {source} ({vnet})",
            "ルート ソース {source} ({vnet})",
            &[("source", s(source)), ("vnet", s(vnet))],
        ),
        NextHop::Site { site } => tr(lang, "site {site}", "サイト {site}", &[("site", s(site))]),
        NextHop::Internet => tr(lang, "Internet", "インターネット", &[]),
        NextHop::ForcedTunnel { connection, site } => tr(
            lang,
            "forced tunnel {connection} → site {site}",
            "強制トンネル {connection} → サイト {site}",
            &[("connection", s(connection)), ("site", s(site))],
        ),
        NextHop::Drop => tr(lang, "drop", "破棄", &[]),
    }
}

/// Where a packet is.
pub fn location(l: &Location, lang: Lang) -> String {
    match l {
        Location::Vnet { vnet } => tr(lang, "VNet {vnet}", "VNet {vnet}", &[("vnet", s(vnet))]),
        Location::Gateway { gateway } => tr(
            lang,
            "gateway {gateway}",
            "ゲートウェイ {gateway}",
            &[("gateway", s(gateway))],
        ),
        Location::Site { site } => tr(lang, "site {site}", "サイト {site}", &[("site", s(site))]),
        Location::P2sClient {
            gateway,
            client: Some(client),
        } => tr(
            lang,
            "P2S client {client} ({gateway})",
            "ポイント対サイト クライアント {client} ({gateway})",
            &[("client", s(client)), ("gateway", s(gateway))],
        ),
        Location::P2sClient {
            gateway,
            client: None,
        } => tr(
            lang,
            "P2S client ? ({gateway})",
            "ポイント対サイト クライアント (未接続、{gateway})",
            &[("gateway", s(gateway))],
        ),
        Location::Internet => tr(lang, "Internet", "インターネット", &[]),
    }
}

/// Where the packet ends up.
pub fn outcome(o: &Outcome, lang: Lang) -> String {
    match o {
        Outcome::Delivered { to } => tr(
            lang,
            "delivered to {to}",
            "{to} に配送",
            &[("to", location(to, lang))],
        ),
        Outcome::Internet => tr(lang, "to the Internet", "インターネットへ", &[]),
        Outcome::ForcedTunnel { site } => tr(
            lang,
            "to the Internet through site {site} (forced tunneling)",
            "サイト {site} 経由でインターネットへ (強制トンネリング)",
            &[("site", s(site))],
        ),
        Outcome::HandedOff { vnet, source } => tr(
            lang,
            "handed to route source {source} of {vnet}",
            "{vnet} のルート ソース {source} に引き渡し",
            &[("source", s(source)), ("vnet", s(vnet))],
        ),
        Outcome::Dropped { reason, why } => {
            let why = match (why, lang) {
                (HopReason::Unknown, _) | (_, Lang::En) => reason.clone(),
                (w, Lang::Ja) => hop_reason(w, lang).unwrap_or_else(|| reason.clone()),
            };
            tr(lang, "dropped: {why}", "破棄: {why}", &[("why", why)])
        }
    }
}

/// Why no path can be computed.
pub fn next_hop_error(e: &NextHopError, lang: Lang) -> String {
    match e {
        NextHopError::AmbiguousSource {
            address,
            candidates,
        } => tr(
            lang,
            "source {address} belongs to several resources ({candidates}); name the tenant to \
             disambiguate",
            "送信元 {address} は複数のリソース ({candidates}) に属しています。テナントを指定して区別してください。",
            &[
                ("address", s(address)),
                ("candidates", candidates.join(", ")),
            ],
        ),
        NextHopError::RoutingLoop { at } => tr(
            lang,
            "the packet would loop at gateway {at}",
            "パケットがゲートウェイ {at} でループします。",
            &[("at", s(at))],
        ),
    }
}

/// A hop's reason line in `lang` (English: the hop's `reason`; a hop without facts, from an
/// older producer, shows its English reason in every language).
pub fn hop(h: &crate::routes::Hop, lang: Lang) -> String {
    match lang {
        Lang::En => h.reason.clone(),
        Lang::Ja => hop_reason(&h.why, lang).unwrap_or_else(|| h.reason.clone()),
    }
}

/// A [`HopReason`] rendered in `lang` (`None` for [`HopReason::Unknown`]).
pub fn hop_reason(w: &HopReason, lang: Lang) -> Option<String> {
    use HopReason as R;
    let o = |o: &RouteOrigin| origin_phrase(o, lang);
    Some(match w {
        R::Unknown => return None,
        R::NoRoute => tr(lang, "no route", "ルートがありません", &[]),
        R::IntoVnet {
            dst,
            matched,
            origin,
        } => tr(
            lang,
            "{dst} is in {matched}, {origin}: delivered into the VNet",
            "{dst} は {matched} ({origin}) に含まれるため、VNet 内に配送されます",
            &[
                ("dst", s(dst)),
                ("matched", s(matched)),
                ("origin", o(origin)),
            ],
        ),
        R::SelectorMatch {
            local,
            remote,
            src,
            dst,
            connection,
        } => tr(
            lang,
            "traffic selector ({local}, {remote}) matches {src} → {dst}: encrypted into connection \
             {connection}",
            "トラフィック セレクター ({local}, {remote}) が {src} → {dst} に一致するため、暗号化して接続 {connection} に送ります",
            &[
                ("local", s(local)),
                ("remote", s(remote)),
                ("src", s(src)),
                ("dst", s(dst)),
                ("connection", s(connection)),
            ],
        ),
        R::NoSelector { gateway, src, dst } => tr(
            lang,
            "no traffic selector of PolicyBased gateway {gateway} matches {src} → {dst}",
            "PolicyBased ゲートウェイ {gateway} のトラフィック セレクターのどれも {src} → {dst} に一致しません",
            &[("gateway", s(gateway)), ("src", s(src)), ("dst", s(dst))],
        ),
        R::IntoSiteToSite {
            dst,
            matched,
            origin,
            connection,
        } => tr(
            lang,
            "{dst} is in {matched}, {origin}: into connection {connection}",
            "{dst} は {matched} ({origin}) に含まれるため、接続 {connection} に送ります",
            &[
                ("dst", s(dst)),
                ("matched", s(matched)),
                ("origin", o(origin)),
                ("connection", s(connection)),
            ],
        ),
        R::IntoVnetToVnet {
            dst,
            matched,
            origin,
            transit,
            connection,
        } => {
            let args = [
                ("dst", s(dst)),
                ("matched", s(matched)),
                ("origin", o(origin)),
                ("connection", s(connection)),
            ];
            if *transit {
                tr(
                    lang,
                    "{dst} is in {matched}, {origin} (transit, computed from the topology): into \
                     VNet-to-VNet connection {connection}",
                    "{dst} は {matched} ({origin}、トポロジから計算したトランジット) に含まれるため、VNet 対 VNet 接続 {connection} に送ります",
                    &args,
                )
            } else {
                tr(
                    lang,
                    "{dst} is in {matched}, {origin}: into VNet-to-VNet connection {connection}",
                    "{dst} は {matched} ({origin}) に含まれるため、VNet 対 VNet 接続 {connection} に送ります",
                    &args,
                )
            }
        }
        R::ToP2sClient { dst, client } => tr(
            lang,
            "{dst} is point-to-site client \"{client}\"",
            "{dst} はポイント対サイト クライアント「{client}」のアドレスです",
            &[("dst", s(dst)), ("client", s(client))],
        ),
        R::ForcedTunnel {
            dst,
            connection,
            site,
        } => tr(
            lang,
            "{dst} is in no connected prefix; forced tunneling sends Internet-bound traffic into \
             connection {connection} to site {site}",
            "{dst} は接続先のどのプレフィックスにも含まれません。強制トンネリングにより、インターネット向けトラフィックは接続 {connection} でサイト {site} に送られます",
            &[
                ("dst", s(dst)),
                ("connection", s(connection)),
                ("site", s(site)),
            ],
        ),
        R::NoClient {
            dst,
            matched,
            origin,
        } => tr(
            lang,
            "{dst} is in {matched}, {origin}, but no connected client holds it (VM-1)",
            "{dst} は {matched} ({origin}) に含まれますが、このアドレスを持つ接続中のクライアントはありません (VM-1)",
            &[
                ("dst", s(dst)),
                ("matched", s(matched)),
                ("origin", o(origin)),
            ],
        ),
        R::GatewayToInternet { dst } => tr(
            lang,
            "{dst} is in no connected prefix: out to the Internet",
            "{dst} は接続先のどのプレフィックスにも含まれないため、インターネットへ送られます",
            &[("dst", s(dst))],
        ),
        R::StaysInVnet { dst, matched } => tr(
            lang,
            "{dst} is inside the VNet's own address space ({matched}): it stays inside the VNet",
            "{dst} は VNet 自身のアドレス空間 ({matched}) 内にあるため、VNet 内に留まります",
            &[("dst", s(dst)), ("matched", s(matched))],
        ),
        R::ToRouteSource {
            dst,
            matched,
            source,
        } => tr(
            lang,
            "{dst} is in {matched}, carried by route source \"{source}\" (not the VPN gateway)",
            "{dst} は {matched} に含まれ、VPN ゲートウェイではなくルート ソース「{source}」が運びます",
            &[
                ("dst", s(dst)),
                ("matched", s(matched)),
                ("source", s(source)),
            ],
        ),
        R::VnetForcedToGateway { dst, gateway } => tr(
            lang,
            "{dst} is in no connected prefix; forced tunneling sends it to gateway {gateway}",
            "{dst} は接続先のどのプレフィックスにも含まれません。強制トンネリングによりゲートウェイ {gateway} に送られます",
            &[("dst", s(dst)), ("gateway", s(gateway))],
        ),
        R::VnetToGateway {
            dst,
            matched,
            origin,
            gateway,
        } => tr(
            lang,
            "{dst} is in {matched}, {origin}, a prefix connected through gateway {gateway}: only \
             such traffic goes through the gateway",
            "{dst} は {matched} ({origin}) に含まれます。これはゲートウェイ {gateway} の接続先のプレフィックスで、ゲートウェイを通るのはこのようなトラフィックだけです",
            &[
                ("dst", s(dst)),
                ("matched", s(matched)),
                ("origin", o(origin)),
                ("gateway", s(gateway)),
            ],
        ),
        R::VnetToInternet { dst } => tr(
            lang,
            "{dst} is in no connected prefix: straight to the Internet",
            "{dst} は接続先のどのプレフィックスにも含まれないため、直接インターネットへ送られます",
            &[("dst", s(dst))],
        ),
        R::OnSite { dst, prefix } => tr(
            lang,
            "{dst} is on the site's own network ({prefix})",
            "{dst} はサイト自身のネットワーク ({prefix}) 上にあります",
            &[("dst", s(dst)), ("prefix", s(prefix))],
        ),
        R::SiteDevice {
            dst,
            connection,
            gateway,
            matched,
        } => tr(
            lang,
            "the site device sends {dst} into connection {connection} because gateway {gateway} \
             advertises {matched} (the device's allowed IPs)",
            "ゲートウェイ {gateway} が {matched} をアドバタイズしている (デバイスの AllowedIPs) ため、サイトのデバイスは {dst} を接続 {connection} に送ります",
            &[
                ("dst", s(dst)),
                ("connection", s(connection)),
                ("gateway", s(gateway)),
                ("matched", s(matched)),
            ],
        ),
        R::SiteUplink { dst } => tr(
            lang,
            "no tunnel carries {dst}: the site's own Internet uplink",
            "{dst} を運ぶトンネルはありません。サイト自身のインターネット回線を使います",
            &[("dst", s(dst))],
        ),
        R::NoSourceClient { src } => tr(
            lang,
            "no connected point-to-site client holds {src}; a client that is not connected cannot \
             reach private addresses",
            "{src} を持つ接続中のポイント対サイト クライアントはありません。接続していないクライアントはプライベート アドレスに到達できません",
            &[("src", s(src))],
        ),
        R::ClientToGateway {
            gateway,
            matched,
            dst,
        } => tr(
            lang,
            "gateway {gateway} routes {matched}, so the client sends {dst} through its tunnel",
            "ゲートウェイ {gateway} が {matched} をルーティングするため、クライアントは {dst} をトンネル経由で送ります",
            &[
                ("gateway", s(gateway)),
                ("matched", s(matched)),
                ("dst", s(dst)),
            ],
        ),
        R::ClientToInternet { dst } => tr(
            lang,
            "no gateway of the client routes {dst}: the client's own Internet access",
            "クライアントのどのゲートウェイも {dst} をルーティングしません。クライアント自身のインターネット接続を使います",
            &[("dst", s(dst))],
        ),
        R::PrivateFromInternet { dst } => tr(
            lang,
            "{dst} is a private VNet address; from the Internet a machine is reached by its public \
             address and port, its private address only over a tunnel",
            "{dst} は VNet のプライベート アドレスです。インターネットからはパブリック アドレスとポートで到達し、プライベート アドレスにはトンネル経由でのみ到達します",
            &[("dst", s(dst))],
        ),
        R::OutsideTopology { src, dst } => tr(
            lang,
            "neither {src} nor {dst} belongs to the topology",
            "{src} と {dst} はどちらもトポロジに属していません",
            &[("src", s(src)), ("dst", s(dst))],
        ),
    })
}
