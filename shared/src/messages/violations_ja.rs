//! Japanese templates of every (rule, case), with the same placeholders as the English ones.

use crate::rules::RuleId;
use RuleId::*;

/// `visible_to`'s answer when only another tenant's resources break `rule`.
pub(super) const OTHER_TENANT_TEMPLATE: &str = "この変更は、あなたの接続から到達する他のテナントのリソースでルール {rule} に違反します。他のテナントに届く部分 (アドレス空間、サイト、そこへの接続) を元に戻すか、そのテナントの所有者と調整してください。";

/// (rule, case, template).
pub(super) const TEMPLATES: &[(RuleId, &str, &str)] = &[
    (
        Name1,
        "tenant",
        "テナント名「{name}」が {count} 個あります。テナント名は一意である必要があります。",
    ),
    (
        Name1,
        "resource",
        "テナント「{tenant}」に「{name}」という名前の{kind}が複数あります。名前は種類ごとにテナント内で一意です。どれかの名前を変更するか削除してください。",
    ),
    (
        Name1,
        "p2s",
        "ゲートウェイ「{name}」にポイント対サイト構成が複数あります。1 つだけ残してください。",
    ),
    (
        Name1,
        "subnet",
        "「{name}」という名前のサブネットが複数あります。どれかの名前を変更してください。",
    ),
    (
        Name1,
        "route_source",
        "「{name}」という名前のルート ソースが複数あります。どれかの名前を変更してください。",
    ),
    (
        Name2,
        "empty",
        "{kind}名「{name}」: 名前を空にはできません。",
    ),
    (
        Name2,
        "too_long",
        "{kind}名「{name}」: 名前は {max} 文字までですが、{len} 文字あります。",
    ),
    (
        Name2,
        "first_char",
        "{kind}名「{name}」: 名前は英数字で始める必要があります。",
    ),
    (
        Name2,
        "bad_char",
        "{kind}名「{name}」: 名前に {char_quoted} は使えません。ASCII の英数字、'-'、'_'、'.' を使ってください。",
    ),
    (
        Name2,
        "region",
        "リージョンが空です。VNet を配置するリージョンのラベルを指定してください。",
    ),
    (
        Ref1,
        "tenant",
        "テナント「{tenant}」は存在しません。先に作成してください。",
    ),
    (
        Ref1,
        "change",
        "削除する{kind}「{name}」はありません。名前とテナントを確認してください。",
    ),
    (
        Ref1,
        "gateway_vnet",
        "ゲートウェイ「{gateway}」の VNet「{vnet}」はテナント「{tenant}」に存在しません。先に VNet を作成するか、名前を修正してください。",
    ),
    (
        Ref1,
        "forced_site",
        "強制トンネリングのサイト「{site}」はテナント「{tenant}」に存在しません。",
    ),
    (
        Ref1,
        "still_used",
        "{kind}「{name}」は{used_by_kind}「{used_by}」がまだ使っています。先にその{used_by_kind}を削除してください。",
    ),
    (
        Ref1,
        "still_used_remote",
        "{kind}「{name}」は{used_by_kind}「{used_by}」がリモート ゲートウェイとしてまだ使っています。先にその接続を削除してください。",
    ),
    (
        Ref1,
        "still_used_forced",
        "{kind}「{name}」は{used_by_kind}「{used_by}」が強制トンネリングのサイトとしてまだ使っています。先にゲートウェイの強制トンネリングのサイトを解除してください。",
    ),
    (
        Ref1,
        "still_used_additional",
        "{kind}「{name}」は{used_by_kind}「{used_by}」の追加の仮想ネットワーク (additional_vnets) にまだ含まれています。先にそこから外してください。",
    ),
    (
        Pfx1,
        "",
        "{prefix} はホスト ビットが立っています。{canonical} のことですか?",
    ),
    (
        Pfx2,
        "vnet",
        "VNet「{vnet}」にアドレス空間がありません。プレフィックスを 1 つ以上追加してください。",
    ),
    (
        Pfx2,
        "site",
        "サイト「{site}」にアドレス プレフィックスがありません。トンネル経由でルーティングするオンプレミスの範囲を追加してください。",
    ),
    (
        Pfx3,
        "",
        "{prefix} は同じリスト内の {other_prefix} と重複しています。各範囲は 1 回だけ指定してください (大きい方のプレフィックスを残すか、分割してください)。",
    ),
    (
        Pfx4,
        "default",
        "{prefix} は {family} のすべてのアドレスで、{list}には使えません。使用中の範囲だけを指定してください (例: {private})。",
    ),
    (
        Pfx4,
        "default_site",
        "{prefix} は {family} のすべてのアドレスで、{list}には使えません。使用中の範囲だけを指定してください (例: {private})。インターネット向けトラフィックをこのサイト経由で送るには、代わりにゲートウェイの強制トンネリングのサイト (GW-9) に設定してください。",
    ),
    (
        Pfx5,
        "",
        "{prefix} は{reserved_what}と重複しています。{reserved_why}ため、{list}には使えません。{private}を使ってください。",
    ),
    (
        Pfx6,
        "",
        "{prefix} は{reserved_what}と重複しています。{reserved_why}ため、{list}には使えません。{private}を使ってください。",
    ),
    (
        Pfx7,
        "",
        "{prefix} は{reserved_what}と重複しています。{reserved_why}ため、{list}には使えません。{private}を使ってください。",
    ),
    (
        Pfx8,
        "",
        "{prefix} は{reserved_what}と重複しています。{reserved_why}ため、{list}には使えません。{private}を使ってください。",
    ),
    (
        Sub1,
        "",
        "サブネット「{subnet}」({prefix}) が VNet のアドレス空間 ({address_space}) の外にあります。その中のプレフィックスを選ぶか、アドレス空間を広げてください。",
    ),
    (
        Sub2,
        "",
        "サブネット「{subnet}」({prefix}) がサブネット「{other_subnet}」({other_prefix}) と重複しています。VNet のサブネットは重複できません。どちらかを縮小するか移動してください。",
    ),
    (
        Gw11,
        "",
        "アプライアンスのアドレス {address} が VNet のアドレス空間 ({address_space}) の外にあります。ユーザー定義ルートは VNet 内のアプライアンスを指す必要があります。",
    ),
    (
        Gw10,
        "",
        "ゲートウェイのエンドポイント {endpoint} は{kind}アドレスのため、他のホストのデバイスから到達できません。ゲートウェイを実行するワーカーを --public-address アドレス (デバイスから到達できるワーカー ホストのアドレス) を付けて起動してください。",
    ),
    (
        Gw3,
        "port_zero",
        "パブリック エンドポイント {endpoint} のポートが 0 です。実際のポートはサーバーが割り当てます。",
    ),
    (
        Gw3,
        "shared",
        "パブリック エンドポイント {endpoint} は別のゲートウェイも使っています。エンドポイントはゲートウェイの作成時にゲートウェイごとに割り当てられます。サーバーに任せてください。",
    ),
    (
        Key1,
        "",
        "{what}が WireGuard の公開鍵ではありません。`wg pubkey` が出力する、標準 base64 の 32 バイト (「=」で終わる 44 文字) が必要です。",
    ),
    (
        Lim2,
        "active_active",
        "SKU {sku} はアクティブ/アクティブに対応していません。VpnGw1 以上を選ぶか、アクティブ/アクティブをオフにしてください。",
    ),
    (
        Lim1,
        "too_many",
        "ゲートウェイ「{gateway}」には接続が {connections} 個ありますが、SKU {sku} で使えるのは {limit} 個までです。接続を {excess} 個削除してください。",
    ),
    (
        Lim1,
        "too_many_resize",
        "ゲートウェイ「{gateway}」には接続が {connections} 個ありますが、SKU {sku} で使えるのは {limit} 個までです。接続を {excess} 個削除するか、ゲートウェイを {bigger_sku} (接続 {bigger_limit} 個まで) に変更してください。",
    ),
    (
        Gw9,
        "policy_based",
        "強制トンネリングには RouteBased ゲートウェイが必要です。PolicyBased ゲートウェイはセレクターに一致するトラフィックしか送りません。種類を変更するか、サイトの指定を解除してください。",
    ),
    (
        Gw9,
        "connection_deleted",
        "接続 {connection} はゲートウェイ「{gateway}」からサイト「{site}」への強制トンネルを運んでいます。先にゲートウェイの強制トンネリングのサイトを解除してから、接続を削除してください。",
    ),
    (
        Gw9,
        "not_connected",
        "強制トンネリングのサイト「{site}」はゲートウェイ「{gateway}」に接続されていません。先にそのサイトへのサイト対サイト接続を作成してください。",
    ),
    (
        Gw7,
        "name_case",
        "サブネット「{subnet}」はゲートウェイ サブネットではありません。名前は大文字と小文字を区別します。「GatewaySubnet」のことですか?",
    ),
    (
        Gw7,
        "appliance",
        "アプライアンスのアドレス {address} は、ゲートウェイ専用の GatewaySubnet 内にあります。アプライアンスは別のサブネットに配置してください。",
    ),
    (
        Gw7,
        "missing",
        "VNet「{vnet}」にはゲートウェイ「{gateway}」がありますが、GatewaySubnet という名前のサブネットがありません。アドレス空間内に /{v4_len} 以上 (IPv4) または /{v6_len} 以上 (IPv6) の GatewaySubnet を追加してください。",
    ),
    (
        Gw7,
        "too_small",
        "GatewaySubnet {prefix} は小さすぎます。ゲートウェイには /{max_len} 以上 ({family}) が必要です。プレフィックス長を {max_len} 以下にしてください (例: {example})。",
    ),
    (
        Gw7,
        "too_small_no_gateway",
        "GatewaySubnet {prefix} はゲートウェイには小さすぎます。ゲートウェイを作成するには /{max_len} 以上 ({family}) が必要です。プレフィックス長を {max_len} 以下にしてください (例: {example})。",
    ),
    (
        Vnet1,
        "",
        "VNet「{vnet}」にゲートウェイが複数あります。VNet のゲートウェイは 1 つまでです。余分なゲートウェイを削除してください。",
    ),
    (
        Conn4,
        "ipv6",
        "デバイスのアドレス {host} は IPv6 です。サイト対サイトのデバイスにはパブリック IPv4 アドレス (またはそれに解決される DNS 名) が必要です。",
    ),
    (
        Conn4,
        "unusable",
        "デバイスのアドレス {host} は{problem}です。サイト対サイトのデバイスにはパブリック IPv4 アドレスが必要です。",
    ),
    (
        Conn4,
        "non_public",
        "デバイスのアドレス {host} は{problem}です。ゲートウェイから到達できる場合にだけトンネルが確立します (デバイスのパブリック IPv4 アドレスを指定してください)。",
    ),
    (
        Port1,
        "",
        "デバイスのポートが 0 です。0 で待ち受ける WireGuard デバイスはありません。デバイスの WireGuard が待ち受ける UDP ポート (1 ～ 65535、通常は 51820) を指定するか、空欄にして 51820 を使ってください。",
    ),
    (
        Gw5,
        "empty",
        "共有キーが空です。1 ～ 128 文字の ASCII 英数字を使ってください。",
    ),
    (
        Gw5,
        "too_long",
        "共有キーが {len} 文字あります。使えるのは {max} 文字までです (ASCII 英数字)。",
    ),
    (
        Gw5,
        "invalid_char",
        "共有キーの {position} 文字目に {char_quoted} が含まれています。使えるのは ASCII 英数字 (A-Z、a-z、0-9) だけです。",
    ),
    // Connections (validate/connections.rs).
    (
        Ref1,
        "connection_gateway",
        "接続「{connection}」のゲートウェイ「{gateway}」はテナント「{tenant}」に存在しません。先にゲートウェイを作成するか、名前を修正してください。",
    ),
    (
        Ref1,
        "connection_site",
        "サイト「{site}」はテナント「{tenant}」に存在しません。先にローカル ネットワーク サイトを作成するか、名前を修正してください。",
    ),
    (
        Ref1,
        "remote_gateway",
        "リモート ゲートウェイ「{gateway}」はテナント「{tenant}」に存在しません。先に作成するか、名前を修正してください。",
    ),
    (
        Gw2,
        "route_based",
        "ゲートウェイ「{gateway}」は RouteBased です。そのトンネルは転送テーブルと任意対任意のセレクターを使います。トラフィック セレクターを削除してください (セレクターは PolicyBased ゲートウェイにだけ適用されます)。",
    ),
    (
        Gw2,
        "vnet_to_vnet",
        "VNet 対 VNet 接続はルート ベースで、セレクターは任意対任意です。トラフィック セレクターを削除してください。",
    ),
    (
        Ref2,
        "own_gateway",
        "VNet 対 VNet 接続は自身のゲートウェイを指定できません。相手の VNet のゲートウェイを指定してください。",
    ),
    (
        Ref2,
        "duplicate",
        "ゲートウェイ {gateway} からゲートウェイ {remote_gateway} への接続が {count} 個あります。VNet 対 VNet 接続はゲートウェイの組ごとに 1 つです。余分な接続を削除してください。",
    ),
    (
        Gw6,
        "",
        "VNet 対 VNet には両端に RouteBased ゲートウェイが必要ですが、{end}のゲートウェイ {gateway} は PolicyBased です。RouteBased で作成し直してください。",
    ),
    (
        Conn2,
        "waiting",
        "{status}: これは VNet 対 VNet トンネルの片側です。相手側 ({remote_gateway} 上で {gateway} を指定する VnetToVnet 接続) が同じ共有キーで作成されると、トンネルが確立します。",
    ),
    (
        Conn2,
        "waiting_cross",
        "{status}: これは、他のテナントのゲートウェイ {remote_gateway} への VNet 対 VNet トンネルの片側です。そのゲートウェイの所有者が相手側 ({remote_name} 上で {gateway} を指定する VnetToVnet 接続) を同じ共有キーで作成するまで、何も接続しません。ゲートウェイ {remote_gateway} が存在しないか共有されていない場合は、その所有者に名前を確認してください。",
    ),
    (
        Conn2,
        "key_mismatch",
        "{status}: この VNet 対 VNet トンネルの相手側 (ゲートウェイ {remote_gateway} のテナントが所有) の共有キーが異なるため、トンネルを確立できません。{remote_gateway} の所有者と 1 つのキーを決めて、この接続に設定してください (両側に同じキーが設定されるとトンネルが確立します)。",
    ),
    (
        Gw4,
        "",
        "VNet 対 VNet トンネルの両側 ({connection} と {other_connection}) の共有キーが異なります。1 回の変更で両方に同じキーを設定してください (同じテナント内の組では、片側のキーを置き換えると両方が置き換わります)。",
    ),
    (
        Lim2,
        "redundant_active_active",
        "ゲートウェイ「{gateway}」からサイト「{site}」への接続が {count} 個あります。アクティブ/アクティブ ゲートウェイから 1 つのサイトへのトンネルは 2 つまでです。",
    ),
    (
        Lim2,
        "redundant_turn_on",
        "ゲートウェイ「{gateway}」からサイト「{site}」への接続が {count} 個あります。1 つのサイトに 2 つのトンネルを張るにはアクティブ/アクティブをオンにするか、余分な接続を削除してください。",
    ),
    (
        Lim2,
        "redundant_sku",
        "ゲートウェイ「{gateway}」からサイト「{site}」への接続が {count} 個あります。SKU {sku} は冗長トンネルに対応していません。余分な接続を削除するか、アクティブ/アクティブに対応した SKU (VpnGw1 以上) に変更してください。",
    ),
    (
        Conn3,
        "",
        "PolicyBased ゲートウェイ「{gateway}」にサイト対サイト接続が {connections} 個あります (サイト{sites_names})。PolicyBased ゲートウェイが接続できるサイトは 1 つだけです (複数のサイトには RouteBased が必要です。GW-6)。RouteBased で作成し直すか、余分な接続を削除してください。",
    ),
    (
        Gw1,
        "mixed_family",
        "セレクター ({local}, {remote}) に IPv4 と IPv6 が混在しています。セレクターの両側は同じアドレス ファミリにしてください。",
    ),
    (
        Gw1,
        "local_outside",
        "セレクターのローカル側 {local} が VNet「{vnet}」({address_space}) の外にあります。セレクターは VNet のプレフィックスとサイトのプレフィックスを組にします。",
    ),
    (
        Gw1,
        "remote_outside",
        "セレクターのリモート側 {remote} がサイト「{site}」({address_prefixes}) の外にあります。その範囲をサイトに追加するか、セレクターを修正してください。",
    ),
    (
        Key2,
        "own_key",
        "このピアはゲートウェイ {gateway} 自身の公開鍵を使っています。このピア用に別のキー ペアを生成してください。",
    ),
    (
        Key2,
        "shared",
        "ゲートウェイ {gateway} の {count} 個のピアが同じ公開鍵を使っています。WireGuard はピアを鍵で区別します。デバイスやクライアントごとに別のキー ペアを使ってください。",
    ),
    // Address-space overlaps (validate/overlaps.rs, validate/isolation.rs).
    (
        Lim3,
        "direct",
        "{owner} の {prefix} が {other} の {other_prefix} と重複しています。ゲートウェイ {gateway} が両者を直接接続しています。互いに到達するアドレス空間は重複できません。どちらかのアドレスを変更するか、接続を削除してください。",
    ),
    (
        Lim3,
        "transit",
        "{owner} の {prefix} が {other} の {other_prefix} と重複しています。両者はゲートウェイ {gateway} と {other_gateway} の間のトランジット経由で互いに到達します (LIM-5)。互いに到達するアドレス空間は重複できません。どちらかのアドレスを変更するか、接続を削除してください。",
    ),
    (
        Lim3,
        "foreign",
        "{owner} の {prefix} が、この接続から到達する他のテナントのアドレス空間と重複しています。互いに到達するアドレス空間は重複できません。{prefix} のアドレスを変更するか、他のテナントへの接続を削除してください。",
    ),
    (
        Lim3,
        "foreign_one",
        "{owner} の {prefix} が、この接続から到達する他のテナントのアドレス空間 (接続{connections_names}) と重複しています。互いに到達するアドレス空間は重複できません。{prefix} のアドレスを変更するか、他のテナントへの接続を削除してください。",
    ),
    (
        Lim3,
        "foreign_many",
        "{owner} の {prefix} が、この接続から到達する他のテナントのアドレス空間 (接続{connections_names}) と重複しています。互いに到達するアドレス空間は重複できません。{prefix} のアドレスを変更するか、他のテナントへの接続を削除してください。",
    ),
    (
        Lim3,
        "site_vnet",
        "サイト「{site}」の {prefix} が VNet「{vnet}」の {other_prefix} と重複しているため、このサイトは VNet「{vnet}」に接続できません (互いに到達するアドレス空間は重複できません)。サイトをその VNet のゲートウェイに接続する前に、どちらかのアドレスを変更してください。",
    ),
    (
        P2s6,
        "pool",
        "ゲートウェイ「{gateway}」のクライアントは複数の VNet 向けに構成されていて、{side} が {other_side} と重複しています。クライアント アドレス プールは、クライアントが到達する VNet やサイトと重複できません。どちらかのアドレスを変更するか、その VNet を追加の仮想ネットワーク (additional_vnets) から外してください。",
    ),
    (
        P2s6,
        "vnets",
        "ゲートウェイ「{gateway}」のクライアントは複数の VNet 向けに構成されていて、{side} が {other_side} と重複しています。クライアントが構成される VNet どうしは重複できません。どちらかのアドレスを変更するか、その VNet を追加の仮想ネットワーク (additional_vnets) から外してください。",
    ),
    // Point-to-site (validate/p2s.rs).
    (
        Ref1,
        "p2s_gateway",
        "ゲートウェイ「{gateway}」はテナント「{tenant}」に存在しません。先に作成してください。",
    ),
    (
        Ref1,
        "additional_vnet",
        "VNet「{vnet}」はテナント「{tenant}」に存在しません。",
    ),
    (
        P2s1,
        "policy_based",
        "ポイント対サイトは RouteBased ゲートウェイでのみ動作しますが、「{gateway}」は PolicyBased です。ゲートウェイを RouteBased で作成し直してください。",
    ),
    (
        P2s1,
        "additional_policy_based",
        "VNet「{vnet}」のゲートウェイ「{gateway}」は PolicyBased です。ポイント対サイトのクライアントが使えるのは RouteBased ゲートウェイだけです。",
    ),
    (
        Conn5,
        "",
        "サイト対サイトとポイント対サイトを併用できるのは RouteBased ゲートウェイだけです。「{gateway}」は PolicyBased で、サイト対サイト接続があります。RouteBased で作成し直してください。",
    ),
    (
        Pfx2,
        "pool",
        "ポイント対サイト構成にクライアント アドレス プールがありません。クライアントが到達するどのアドレスとも重複しないプレフィックスを追加してください。",
    ),
    (
        P2s3,
        "too_many",
        "ルート証明書が {count} 個アップロードされていますが、使えるのは {limit} 個までです。{excess} 個削除してください。",
    ),
    (
        P2s3,
        "revoked",
        "クライアント「{client}」の証明書は失効しています。新しい証明書が発行されるまで、このクライアントのトンネルは確立しません (またはクライアントを削除してください)。",
    ),
    (
        Name1,
        "root_certificate",
        "「{name}」という名前のルート証明書が {count} 個あります。どれかの名前を変更するか削除してください。",
    ),
    (
        Name1,
        "client",
        "「{name}」という名前のクライアントが複数あります。どれかの名前を変更してください。",
    ),
    (
        Addr1,
        "outside_pool",
        "クライアントのアドレス {address} がプール ({pool}) の外にあります。プール内のアドレスを選んでください。",
    ),
    (
        Addr1,
        "shared",
        "アドレス {address} が {count} 個のクライアントに割り当てられています。クライアントごとに別のアドレスが必要です。",
    ),
    (
        P2s6,
        "own_vnet",
        "VNet「{vnet}」はゲートウェイ自身の VNet です。他の VNet だけを指定してください。",
    ),
    (
        P2s6,
        "no_gateway",
        "VNet「{vnet}」にはゲートウェイがないため、クライアントから到達できません。RouteBased ゲートウェイを追加するか、一覧から外してください。",
    ),
    (
        P2s2,
        "too_many",
        "ゲートウェイ「{gateway}」のポイント対サイト クライアントは {clients} 個ですが、SKU {sku} で使えるのは {limit} 個までです。クライアントを削除してください。",
    ),
    (
        P2s2,
        "too_many_resize",
        "ゲートウェイ「{gateway}」のポイント対サイト クライアントは {clients} 個ですが、SKU {sku} で使えるのは {limit} 個までです。クライアントを削除するか、{bigger_sku} に変更してください。",
    ),
    (
        Ipsec1,
        "v2v",
        "接続 \"{connection}\" は VNet 対 VNet です。IPsec はサイト対サイト接続専用です。protocol を WireGuard にする (または省略する) 必要があります",
    ),
    (
        Ipsec2,
        "policy",
        "接続 \"{connection}\" は WireGuard を使うため、IPsec/IKE ポリシーはありません。ipsec_policy を削除するか、protocol を IPsec にしてください",
    ),
    (
        Ipsec2,
        "mode",
        "接続 \"{connection}\" は WireGuard を使うため、接続モードはありません。connection_mode を Default にする (または省略する) か、protocol を IPsec にしてください",
    ),
    (
        Ipsec3,
        "seconds",
        "{sa} SA の有効期間が {value} 秒です。{min} ～ {max} 秒を指定するか、省略して既定値を使ってください",
    ),
    (
        Ipsec3,
        "kilobytes",
        "CHILD SA のデータ量の上限が {value} KB です。{min} ～ {max} KB を指定するか、省略して上限なしにしてください",
    ),
    (
        Ipsec4,
        "too_long",
        "サイト \"{site}\" の IKE ID は {len} 文字です。{max} 文字までにしてください",
    ),
    (
        Ipsec4,
        "whitespace",
        "サイト \"{site}\" の IKE ID に空白が含まれています。デバイスが提示する ID (IPv4 アドレス、DNS 名、または user@DNS 名) を空白なしで指定してください",
    ),
    (
        Ipsec4,
        "invalid",
        "サイト \"{site}\" の IKE ID \"{identity}\" は IPv4 アドレス、DNS 名、user@DNS 名のいずれでもありません。デバイスが提示する ID を指定するか、省略してデバイスのアドレスを使ってください",
    ),
    (
        Ipsec5,
        "shared_host",
        "ゲートウェイ {gateway} の IPsec 接続 \"{connection}\" と \"{others}\" は同じデバイス {host} に向かいます。ゲートウェイは IPsec デバイスをアドレスで区別するため、1 つだけ残し、他は無効にするか WireGuard にしてください",
    ),
];
