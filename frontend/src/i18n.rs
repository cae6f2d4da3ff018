//! English and Japanese strings; the choice is remembered in localStorage. Violations, routes
//! and the next hop are rendered by `isthmus_shared::messages` (templates with the violation's
//! facts); the English message is kept as detail.

use isthmus_shared::messages;
use isthmus_shared::model::Kind;
use isthmus_shared::rules::RuleId;
use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }
}

const STORAGE_KEY: &str = "isthmus.lang";

pub fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// The remembered language, else the browser's, else English.
pub fn initial_lang() -> Lang {
    if let Some(code) = storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        && let Some(lang) = Lang::from_code(&code)
    {
        return lang;
    }
    let nav = window().navigator().language().unwrap_or_default();
    if nav.starts_with("ja") {
        Lang::Ja
    } else {
        Lang::En
    }
}

pub fn remember(lang: Lang) {
    if let Some(s) = storage() {
        let _ = s.set_item(STORAGE_KEY, lang.code());
    }
}

macro_rules! keys {
    ($( $key:ident => $en:expr, $ja:expr; )*) => {
        /// The text keys of the portal.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(clippy::enum_variant_names)]
        pub enum Key { $( $key, )* }

        impl Key {
            /// Every key, in catalogue order.
            #[cfg_attr(not(test), allow(dead_code))]
            pub const ALL: &'static [Key] = &[ $( Key::$key, )* ];
        }

        pub fn t(lang: Lang, key: Key) -> &'static str {
            match (lang, key) {
                $( (Lang::En, Key::$key) => $en, (Lang::Ja, Key::$key) => $ja, )*
            }
        }
    };
}

keys! {
    Title => "Isthmus VPN gateways", "Isthmus VPN ゲートウェイ";
    Health => "Service health", "サービスの状態";
    Status => "Status", "状態";
    Version => "Version", "バージョン";
    Database => "Database", "データベース";
    Workers => "Connected workers", "接続中のワーカー";
    NoWorkers => "No worker is connected. Start one with: isthmus-worker --server URL --token TOKEN",
        "接続中のワーカーはありません。isthmus-worker --server URL --token TOKEN で起動してください";
    WorkerName => "Name", "名前";
    LastSeen => "Last heartbeat", "最終ハートビート";
    Metering => "VNet-to-VNet traffic by region pair (LIM-6)", "リージョンペアごとの VNet 間トラフィック (LIM-6)";
    NoMetering => "No VNet-to-VNet traffic has been metered yet.", "VNet 間トラフィックはまだ計測されていません。";
    RegionPair => "Regions", "リージョン";
    Billable => "Billable", "課金対象";
    BilledBytes => "Billed", "課金バイト";
    SentBytes => "Sent", "送信";
    ReceivedBytes => "Received", "受信";
    YesWord => "yes", "はい";
    NoWord => "no (same region)", "いいえ (同一リージョン)";
    Loading => "Loading…", "読み込み中…";
    ServerUnreachable => "The server did not answer", "サーバーから応答がありません";
    Language => "Language", "言語";
    // Session
    SignIn => "Sign in", "サインイン";
    Username => "Username", "ユーザー名";
    Password => "Password", "パスワード";
    LogIn => "Log in", "ログイン";
    LogOut => "Log out", "ログアウト";
    LoginFailed => "Login failed", "ログインに失敗しました";
    SignedInAs => "Signed in as", "ログイン中:";
    // Navigation
    MainNav => "Main", "メイン";
    Dashboard => "Dashboard", "ダッシュボード";
    Tenant => "Tenant", "テナント";
    Tenants => "Tenants", "テナント一覧";
    CreateTenant => "Create tenant", "テナントを作成";
    TenantName => "Tenant name", "テナント名";
    NoTenants => "You have no tenant yet: create one to start.", "テナントがまだありません。作成してください。";
    Diagram => "Topology diagram", "トポロジ図";
    Vnets => "Virtual networks", "仮想ネットワーク";
    Gateways => "Gateways", "ゲートウェイ";
    Sites => "Local network sites", "ローカル ネットワーク サイト";
    Connections => "Connections", "接続";
    PointToSite => "Point-to-site", "ポイント対サイト";
    Routes => "Routes and next hop", "ルートとネクスト ホップ";
    Bench => "Benchmark", "ベンチマーク";
    // Lists and forms
    Edit => "Edit", "編集";
    Delete => "Delete", "削除";
    Save => "Save", "保存";
    Saving => "Saving…", "保存中…";
    Cancel => "Cancel", "キャンセル";
    Confirm => "Confirm", "確認";
    Name => "Name", "名前";
    Actions => "Actions", "操作";
    Empty => "Nothing here yet.", "まだありません。";
    NotFound => "Not found", "見つかりません";
    Problems => "Problems", "問題";
    SaveFailed => "The server refused the change; nothing was saved.", "サーバーが変更を拒否しました。何も保存されていません。";
    ConfirmDelete => "Delete this resource?", "このリソースを削除しますか?";
    DeleteBreaks => "Deleting it would break:", "削除すると次の問題が起きます:";
    Detail => "Details (English)", "詳細 (英語)";
    Warning => "warning", "警告";
    // VNet
    NewVnet => "New virtual network", "仮想ネットワークの作成";
    EditVnet => "Edit virtual network", "仮想ネットワークの編集";
    Region => "Region", "リージョン";
    AddressSpace => "Address space", "アドレス空間";
    DnsServers => "DNS servers", "DNS サーバー";
    Subnets => "Subnets", "サブネット";
    Subnet => "Subnet", "サブネット";
    SubnetName => "name", "名前";
    SubnetPrefix => "prefix", "プレフィックス";
    AddSubnet => "Add subnet", "サブネットを追加";
    Remove => "Remove", "削除";
    ListHint => "Separate several values with commas.", "複数の値はカンマで区切ってください。";
    // Gateway
    NewGateway => "New gateway", "ゲートウェイの作成";
    EditGateway => "Edit gateway", "ゲートウェイの編集";
    Vnet => "Virtual network", "仮想ネットワーク";
    GatewayType => "Gateway type", "ゲートウェイの種類";
    Sku => "SKU", "SKU";
    ActiveActive => "Active-active", "アクティブ/アクティブ";
    ForcedTunneling => "Forced tunneling site", "強制トンネリングのサイト";
    NoneOption => "(none)", "(なし)";
    PublicEndpoint => "Public endpoint", "パブリック エンドポイント";
    PublicKey => "Public key", "公開鍵";
    Pending => "allocated when created", "作成時に割り当て";
    // Site
    NewSite => "New local network site", "ローカル ネットワーク サイトの作成";
    EditSite => "Edit local network site", "ローカル ネットワーク サイトの編集";
    DeviceHost => "VPN device address", "VPN デバイスのアドレス";
    DevicePort => "VPN device port", "VPN デバイスのポート";
    AddressPrefixes => "Address prefixes", "アドレス プレフィックス";
    DevicePublicKey => "Device public key", "デバイスの公開鍵";
    DevicePortHint => "The WireGuard port (51820) or, for IPsec, the IKE port (500).",
        "WireGuard のポート (51820)、IPsec の場合は IKE のポート (500) です。";
    DevicePublicKeyHint => "Only needed for WireGuard connections: IPsec connections authenticate with their shared key.",
        "WireGuard 接続でのみ必要です。IPsec 接続は共有キーで認証します。";
    IkeIdentity => "IKE identity (optional)", "IKE ID (省略可)";
    IkeIdentityHint => "For IPsec: the identity the device presents, an IPv4 address, an FQDN or user@FQDN. Empty: the device address.",
        "IPsec で、デバイスが提示する ID です。IPv4 アドレス、FQDN、またはユーザー@FQDN の形式で指定します。空欄の場合はデバイスのアドレスです。";
    // Connection
    NewConnection => "New connection", "接続の作成";
    EditConnection => "Edit connection", "接続の編集";
    Gateway => "Gateway", "ゲートウェイ";
    ConnectionKind => "Connection type", "接続の種類";
    SiteToSite => "Site-to-site", "サイト対サイト";
    VnetToVnet => "VNet-to-VNet", "VNet 対 VNet";
    Site => "Site", "サイト";
    RemoteTenant => "Remote gateway tenant", "リモート ゲートウェイのテナント";
    RemoteGateway => "Remote gateway", "リモート ゲートウェイ";
    Enabled => "Enabled", "有効";
    TrafficSelectors => "Traffic selectors (one \"local remote\" pair per line)", "トラフィック セレクター (1 行に「ローカル リモート」の組)";
    SharedKeyOptional => "Shared key (optional: generated when empty)", "共有キー (省略時は自動生成)";
    SharedKeyHint => "On an IPsec connection it is the IKEv2 pre-shared key (PSK), used as it is.",
        "IPsec 接続では、そのまま IKEv2 の事前共有キー (PSK) として使われます。";
    // Connection: IPsec (issue 17)
    Protocol => "Tunnel protocol", "トンネル プロトコル";
    ProtocolWireGuard => "WireGuard", "WireGuard";
    ProtocolIpsec => "IPsec (IKEv2)", "IPsec (IKEv2)";
    ProtocolHint => "IPsec (IKEv2) connects devices without WireGuard: strongSwan, most firewalls, cloud VPN gateways.",
        "IPsec (IKEv2) は WireGuard のないデバイス (strongSwan、多くのファイアウォール、クラウドの VPN ゲートウェイ) と接続します。";
    ConnectionMode => "Connection mode", "接続モード";
    ModeDefault => "Default (the gateway initiates and answers)", "既定 (ゲートウェイが開始も応答もする)";
    ModeInitiatorOnly => "Initiator only (the gateway initiates)", "イニシエーターのみ (ゲートウェイが開始する)";
    ModeResponderOnly => "Responder only (the gateway only answers the device)", "レスポンダーのみ (ゲートウェイはデバイスに応答するだけ)";
    CustomPolicy => "Custom IPsec/IKE policy", "カスタム IPsec/IKE ポリシー";
    CustomPolicyHint => "Without a custom policy the gateway offers and accepts its default proposals (see the parameter sheet), with SA lifetimes of 28,800 s (IKE) and 3,600 s (CHILD).",
        "カスタム ポリシーがない場合、ゲートウェイは既定のプロポーザル (パラメーター シートを参照) を提示して受け入れます。SA の有効期間は 28,800 秒 (IKE) と 3,600 秒 (CHILD) です。";
    IkeCipher => "IKE encryption", "IKE の暗号化";
    IkePrf => "IKE integrity (PRF)", "IKE の整合性 (PRF)";
    IkeDhGroup => "DH group", "DH グループ";
    EspCipher => "IPsec (ESP) encryption", "IPsec (ESP) の暗号化";
    IkeLifetime => "IKE SA lifetime (s)", "IKE SA の有効期間 (秒)";
    IkeLifetimeHint => "60 to 172,800 seconds; empty: 28,800 (8 hours).", "60 ～ 172,800 秒。空欄の場合は 28,800 (8 時間) です。";
    ChildLifetime => "CHILD SA lifetime (s)", "CHILD SA の有効期間 (秒)";
    ChildLifetimeHint => "60 to 172,800 seconds; empty: 3,600 (1 hour).", "60 ～ 172,800 秒。空欄の場合は 3,600 (1 時間) です。";
    ChildKilobytes => "CHILD SA data (KB)", "CHILD SA のデータ量 (KB)";
    ChildKilobytesHint => "1,024 to 2,147,483,647 KB before a rekey; empty: no limit.", "鍵更新までの 1,024 ～ 2,147,483,647 KB。空欄の場合は無制限です。";
    // Point-to-site
    NewP2s => "New point-to-site configuration", "ポイント対サイト構成の作成";
    EditP2s => "Edit point-to-site configuration", "ポイント対サイト構成の編集";
    AddressPool => "Client address pool", "クライアント アドレス プール";
    AdditionalVnets => "Additional virtual networks", "追加の仮想ネットワーク";
    RootCertificates => "Root certificates (one \"name: data\" per line)", "ルート証明書 (1 行に「名前: データ」)";
    Revoked => "Revoked thumbprints", "失効したサムプリント";
    Clients => "Clients (one \"name public-key address\" per line)", "クライアント (1 行に「名前 公開鍵 アドレス」)";
    // Diagram and status
    Legend => "Legend", "凡例";
    StateUp => "up", "稼働中";
    StateIdle => "idle", "アイドル";
    StateDown => "down", "停止";
    StateDisabled => "disabled", "無効";
    StateConnecting => "connecting", "接続中";
    ReasonNoAnswer => "no answer from the device", "デバイスから応答がありません";
    ReasonKeyMismatch => "the device's keys do not match", "デバイスのキーが一致しません";
    ReasonNotConnected => "not connected", "未接続";
    ReasonNoEndpoint => "the device's address cannot be resolved", "デバイスのアドレスを解決できません";
    Since => "Since", "開始時刻";
    MssClamp => "Clamp TCP MSS to the tunnel MTU (for devices whose MTU is too large)",
        "TCP MSS をトンネル MTU に合わせる (MTU が大きすぎるデバイス向け)";
    EndpointWarning => "Devices cannot reach this gateway: its endpoint {endpoint} is a {kind} address. Start the worker that runs it with isthmus-worker --public-address ADDRESS (an address of the worker host that devices reach), or set ISTHMUS_PUBLIC_ADDRESS.",
        "デバイスはこのゲートウェイに到達できません: エンドポイント {endpoint} は{kind}アドレスです。ゲートウェイを実行するワーカーを isthmus-worker --public-address アドレス (デバイスから到達できるワーカー ホストのアドレス) で起動するか、ISTHMUS_PUBLIC_ADDRESS を設定してください。";
    KindLoopback => "loopback", "ループバック";
    KindUnspecified => "unspecified", "未指定";
    KindLinkLocal => "link-local", "リンクローカル";
    RouteConflicts => "Routes the worker's host refused", "ワーカー ホストが拒否したルート";
    RouteConflictText => "{prefix} is already routed on the worker's host ({existing}); the gateway's route was not installed.",
        "{prefix} はワーカー ホストで既にルーティングされています ({existing})。ゲートウェイのルートはインストールされていません。";
    LastHandshake => "Last handshake", "最終ハンドシェイク";
    Never => "never", "なし";
    BytesIn => "Bytes in", "受信バイト数";
    BytesOut => "Bytes out", "送信バイト数";
    Endpoint => "Endpoint", "エンドポイント";
    Worker => "Worker", "ワーカー";
    Traffic => "Traffic over time", "トラフィックの推移";
    Pool => "P2S pool", "P2S プール";
    // Routes
    EffectiveRoutes => "Effective routes", "有効なルート";
    Prefix => "Prefix", "プレフィックス";
    NextHop => "Next hop", "ネクスト ホップ";
    Origin => "Origin", "由来";
    TransitHops => "Transit hops", "トランジット ホップ数";
    Active => "Active", "有効";
    Yes => "yes", "はい";
    No => "no", "いいえ";
    NextHopTool => "Next hop", "ネクスト ホップ";
    Source => "Source address", "送信元アドレス";
    Destination => "Destination address", "宛先アドレス";
    Trace => "Trace", "経路を調べる";
    Path => "Path", "経路";
    Outcome => "Outcome", "結果";
    NoGateway => "No gateway yet.", "ゲートウェイがまだありません。";
    // Connection page
    DeviceConfig => "Device configuration", "デバイス構成";
    Download => "Download device configuration (wg-quick)", "デバイス構成をダウンロード (wg-quick)";
    DownloadTunnel1 => "Download tunnel 1 (wg-quick, to instance 0)", "トンネル 1 をダウンロード (wg-quick、インスタンス 0 へ)";
    DownloadTunnel2 => "Download tunnel 2 (wg-quick, to instance 1)", "トンネル 2 をダウンロード (wg-quick、インスタンス 1 へ)";
    ActiveActiveHelp => "Active-active gateway: this connection is two tunnels, one to each instance. Run them on the device as two WireGuard interfaces with the same private key: tunnel 1 on the site's device port, tunnel 2 on the next port (open both). Route the gateway's prefixes through tunnel 1 at metric 100 and through tunnel 2 at metric 200 (the PostUp lines of each file), and withdraw tunnel 1's routes while it is dead (a watchdog on its latest handshake, or BGP later). Without that, traffic from the site to the VNet is lost while tunnel 1 is down; traffic from the VNet to the site keeps flowing through tunnel 2.",
        "アクティブ/アクティブ ゲートウェイ: この接続はインスタンスごとに 1 本、計 2 本のトンネルです。デバイスでは同じ秘密鍵の 2 つの WireGuard インターフェイスとして動かしてください。トンネル 1 はサイトのデバイス ポート、トンネル 2 はその次のポートで待ち受けます (両方のポートを開けてください)。ゲートウェイのプレフィックスをトンネル 1 にはメトリック 100、トンネル 2 にはメトリック 200 でルーティングし (各ファイルの PostUp 行)、トンネル 1 が切れている間はそのルートを取り下げてください (最新のハンドシェイクを監視するウォッチドッグ、将来は BGP)。これがないと、トンネル 1 の停止中はサイトから VNet へのトラフィックが失われます。VNet からサイトへのトラフィックはトンネル 2 を通って流れ続けます。";
    TunnelTwoPending => "Tunnel 2 can be downloaded once the gateway runs on two instances.", "ゲートウェイが 2 つのインスタンスで動作すると、トンネル 2 をダウンロードできます。";
    ShowQr => "Show QR code", "QR コードを表示";
    QrCode => "Device configuration QR code", "デバイス構成の QR コード";
    SharedKey => "Shared key", "共有キー";
    RevealKey => "Reveal shared key", "共有キーを表示";
    ReplaceKey => "Replace shared key", "共有キーを置き換え";
    NewSharedKey => "New shared key", "新しい共有キー";
    ConfirmReveal => "Reveal the shared key? Reading it is recorded in the audit log.", "共有キーを表示しますか? 読み取りは監査ログに記録されます。";
    ConfirmReplace => "Replace the shared key? The tunnel goes down until the device uses the new key.", "共有キーを置き換えますか? デバイスが新しいキーを使うまでトンネルは切断されます。";
    KeyReplaced => "The shared key was replaced.", "共有キーを置き換えました。";
    // Connection page: IPsec (issue 17)
    DownloadSwanctl => "strongSwan swanctl.conf", "strongSwan swanctl.conf";
    DownloadSheet => "Parameter sheet", "パラメーター シート";
    DownloadSwanctl2 => "strongSwan swanctl.conf, tunnel 2 (to instance 1)", "strongSwan swanctl.conf、トンネル 2 (インスタンス 1 へ)";
    DownloadSheet2 => "Parameter sheet, tunnel 2", "パラメーター シート、トンネル 2";
    IpsecActiveActiveHelp => "Active-active gateway: this connection is two IPsec tunnels, one to each instance. Load both swanctl.conf files on the device; each tunnel carries the same selectors.",
        "アクティブ/アクティブ ゲートウェイ: この接続はインスタンスごとに 1 本、計 2 本の IPsec トンネルです。デバイスに両方の swanctl.conf を読み込んでください。どちらのトンネルも同じセレクターを運びます。";
    IpsecDeviceHelp => "A strongSwan device loads swanctl.conf as it is (swanctl --load-all); for any other device, the parameter sheet lists every setting.",
        "strongSwan のデバイスでは swanctl.conf をそのまま読み込みます (swanctl --load-all)。その他のデバイスでは、パラメーター シートにすべての設定が載っています。";
    IpsecStatus => "IPsec status", "IPsec の状態";
    IkeSa => "IKE SA", "IKE SA";
    ChildSas => "CHILD SAs", "CHILD SA";
    SaState => "State", "状態";
    SaStateNone => "none", "なし";
    SaStateConnecting => "connecting", "接続中";
    SaStateEstablished => "established", "確立済み";
    SaStateRekeying => "rekeying", "鍵更新中";
    SaStateDeleting => "deleting", "削除中";
    Proposal => "Proposal", "プロポーザル";
    IkeSpis => "SPIs (initiator_responder)", "SPI (イニシエーター_レスポンダー)";
    InboundSpi => "Inbound SPI", "受信 SPI";
    OutboundSpi => "Outbound SPI", "送信 SPI";
    EstablishedAt => "Established", "確立時刻";
    RekeyAt => "Rekey due", "鍵更新の予定";
    GatewayRole => "Gateway role", "ゲートウェイの役割";
    Initiator => "initiator", "イニシエーター";
    Responder => "responder", "レスポンダー";
    Rekeys => "Rekeys", "鍵更新の回数";
    Cipher => "Cipher", "暗号";
    Selectors => "Selectors", "セレクター";
    PacketsIn => "Packets in", "受信パケット数";
    PacketsOut => "Packets out", "送信パケット数";
    NoIkeSa => "No IKE SA has been reported yet.", "IKE SA はまだ報告されていません。";
    NoChildSa => "No CHILD SA.", "CHILD SA はありません。";
    LastError => "Last error", "最後のエラー";
    ErrAuthFailed => "Authentication failed: check that the device uses this connection's shared key as its PSK, and that the identities match (the site's IKE identity and the gateway's public address).",
        "認証に失敗しました。デバイスがこの接続の共有キーを PSK として使っていること、および ID (サイトの IKE ID とゲートウェイのパブリック アドレス) が一致していることを確認してください。";
    ErrNoProposal => "No common proposal: set the device's IKE and ESP proposals to this connection's (its custom policy, or the defaults in the parameter sheet).",
        "共通のプロポーザルがありません。デバイスの IKE と ESP のプロポーザルを、この接続のもの (カスタム ポリシー、またはパラメーター シートの既定値) に合わせてください。";
    ErrTsUnacceptable => "The traffic selectors were refused: make the device's local and remote subnets match the connection's selectors (see the parameter sheet).",
        "トラフィック セレクターが拒否されました。デバイスのローカルとリモートのサブネットを、接続のセレクター (パラメーター シートを参照) に合わせてください。";
    ErrUnreachable => "The device does not answer: check that it runs, that the site's address and IKE port are right, and that UDP to the gateway's port is not blocked.",
        "デバイスが応答しません。デバイスが動作していること、サイトのアドレスと IKE ポートが正しいこと、ゲートウェイのポートへの UDP が遮断されていないことを確認してください。";
    ErrOther => "See the device's log for this notification.", "この通知についてはデバイスのログを確認してください。";
    // Gateway instances (issue 16)
    Instances => "Instances", "インスタンス";
    InstanceNo => "Instance", "インスタンス";
    Zone => "Zone", "ゾーン";
    Role => "Role", "役割";
    RoleActive => "active", "アクティブ";
    RoleStandby => "standby", "スタンバイ";
    Term => "Term", "ターム";
    Partner => "Partner heard", "相手の受信";
    PartnerHeard => "heard", "受信中";
    PartnerNotHeard => "not heard", "受信なし";
    NotReported => "not reported yet", "未報告";
    LastReport => "Last report", "最終報告";
    WorkerNotLive => "(worker not live)", "(ワーカー停止中)";
    CannotBind => "cannot bind the gateway's port", "ゲートウェイのポートをバインドできません";
    NoInstances => "No instance yet: the gateway runs once a worker is live.",
        "インスタンスはまだありません。ワーカーが稼働するとゲートウェイが動作します。";
    ActiveSummary => "Active: instance {n} on {worker}", "アクティブ: {worker} のインスタンス {n}";
    Redundancy => "Redundancy", "冗長性";
    Redundant => "redundant", "冗長化済み";
    NotRedundant => "not redundant", "冗長化されていません";
    NotRedundantBecause => "not redundant: {reason}", "冗長化されていません: {reason}";
    ReasonOneLiveWorker => "only one live worker can run it; start a second worker with a heartbeat port to get a standby",
        "実行できる稼働中のワーカーが 1 台だけです。スタンバイを置くには、ハートビート ポートを持つ 2 台目のワーカーを起動してください";
    ReasonNotPlaced => "it is not placed on any live worker", "稼働中のワーカーに配置されていません";
    ReasonStandbyCannotBind => "the standby's worker cannot bind the gateway's port",
        "スタンバイのワーカーがゲートウェイのポートをバインドできません";
    ReasonStandbyWorkerDown => "the standby's worker is down (its lease ran out); a new standby is placed when another worker is live",
        "スタンバイのワーカーが停止しています (リースが切れました)。別のワーカーが稼働すると新しいスタンバイが配置されます";
    ReasonPartnerUnreachable => "the two instances do not hear each other's heartbeats",
        "2 つのインスタンスが互いのハートビートを受信できていません";
    StandbyEndpoint => "Standby endpoint", "スタンバイのエンドポイント";
    InstancesHelpStandby => "A redundant gateway runs as two instances on two workers, in different zones when the workers have zones. The active instance answers the devices, carries the traffic and holds the gateway's VNet-side address. The standby has the same keys, peers and routes loaded, neither answers nor initiates, and only sends heartbeats to the active instance, five times a second.",
        "冗長化されたゲートウェイは、2 台のワーカー (ゾーンがあれば別々のゾーン) で 2 つのインスタンスとして動作します。アクティブ インスタンスはデバイスに応答し、トラフィックを運び、ゲートウェイの VNet 側アドレスを持ちます。スタンバイ インスタンスは同じキー、ピア、ルートを読み込んだ状態で待機し、応答も接続開始もせず、アクティブ インスタンスへ 1 秒に 5 回ハートビートを送るだけです。";
    InstancesHelpFailover => "When the standby hears nothing for one second (the active instance's worker stopped or was cut off), it takes over under a higher term without needing the server: it initiates a WireGuard handshake to every peer whose address it knows and takes over the VNet-side address and routes; the devices follow it by WireGuard's roaming, with no change on any device. Only one instance stays active: of two that claim it, the higher term wins. The server then records the new active instance and places a new standby on a third worker if there is one.",
        "スタンバイが 1 秒間何も受信しないと (アクティブ インスタンスのワーカーが停止した、または切り離された場合)、サーバーを必要とせずに、より大きいタームで引き継ぎます。アドレスがわかっているすべてのピアへ WireGuard ハンドシェイクを開始し、VNet 側のアドレスとルートを引き継ぎます。デバイスは WireGuard のローミングで新しいインスタンスに移り、デバイス側の変更は不要です。アクティブになるのは常に 1 つだけです。2 つが名乗った場合はタームの大きい方が残ります。その後サーバーは新しいアクティブ インスタンスを記録し、3 台目のワーカーがあれば新しいスタンバイを配置します。";
    // Workers (administrators)
    WorkersAdmin => "Workers and gateway instances", "ワーカーとゲートウェイ インスタンス";
    NoKnownWorkers => "No worker has connected yet.", "まだ接続したワーカーはありません。";
    WorkerLive => "Live", "稼働";
    WorkerDraining => "Draining", "ドレイン";
    ActiveInstances => "Active instances", "アクティブ インスタンス";
    StandbyInstances => "Standby instances", "スタンバイ インスタンス";
    Drain => "Drain", "ドレイン";
    Undrain => "Undrain", "ドレイン解除";
    ConfirmDrain => "Drain worker {name}? It gets no new gateway instances, and every gateway it runs as the active instance is handed over to its standby on another worker, which takes over in one heartbeat round trip (a gateway without a standby first gets one where another worker can take it). Once its active instances are 0, the worker can be stopped. Undrain makes it eligible again; nothing moves back.",
        "ワーカー {name} をドレインしますか? 新しいゲートウェイ インスタンスは配置されなくなり、このワーカーでアクティブなゲートウェイはすべて別のワーカーのスタンバイに引き継がれます (ハートビート 1 往復で引き継がれます。スタンバイのないゲートウェイには、可能であれば先に別のワーカーにスタンバイが置かれます)。アクティブ インスタンスが 0 になったら、ワーカーを停止できます。ドレインを解除すると再び配置の対象になりますが、移動したインスタンスは戻りません。";
    ConfirmUndrain => "Undrain worker {name}? It can take new gateway instances again; the instances that moved away stay where they are.",
        "ワーカー {name} のドレインを解除しますか? 再び新しいゲートウェイ インスタンスを受け入れますが、移動したインスタンスは元に戻りません。";
    // Bench
    BenchRun => "Run benchmark", "ベンチマークを実行";
    // Forms: inputs that do not parse, and what was expected
    ExpectPrefix => "enter an IP prefix such as 10.0.0.0/16", "10.0.0.0/16 のような IP プレフィックスを入力してください";
    ExpectAddress => "enter an IP address such as 10.0.0.4", "10.0.0.4 のような IP アドレスを入力してください";
    ExpectHost => "enter an IPv4 address or a host name", "IPv4 アドレスまたはホスト名を入力してください";
    ExpectPort => "enter a port number from 1 to 65535", "1 ～ 65535 のポート番号を入力してください";
    ExpectSelector => "enter two prefixes per line: local remote", "1 行に 2 つのプレフィックス (ローカル リモート) を入力してください";
    ExpectClient => "enter name, public key and address per line", "1 行に名前、公開鍵、アドレスを入力してください";
    ExpectName => "enter a name", "名前を入力してください";
    ExpectSeconds => "enter a whole number of seconds", "秒数を整数で入力してください";
    ExpectKilobytes => "enter a whole number of kilobytes", "キロバイト数を整数で入力してください";
    ParseProblem => "\"{text}\" does not parse: {expect}.", "「{text}」は形式が正しくありません。{expect}。";
    FixInputs => "Some inputs do not parse: fix the marked fields.", "形式が正しくない入力があります。印の付いた項目を修正してください。";
    SaveRefusedCount => "Fix the {n} problem(s) shown and save again.", "表示されている {n} 件の問題を修正して、もう一度保存してください。";
    RequestFailed => "The request failed (HTTP {status}).", "要求が失敗しました (HTTP {status})。";
    OpenResource => "Open {name}", "{name} を開く";
    // Dashboard
    HealthOk => "ok", "正常";
    HealthDegraded => "degraded", "異常";
    RoleOwner => "owner", "所有者";
    RoleReader => "reader", "閲覧者";
    RoleAdmin => "administrator", "管理者";
    DecimalUnits => "kB, MB, GB are decimal: 1 kB = 1,000 bytes.", "kB、MB、GB は 10 進です (1 kB = 1,000 バイト)。";
    // Relative times
    JustNow => "just now", "たった今";
    AgoSeconds => "{n} s ago", "{n} 秒前";
    AgoMinutes => "{n} min ago", "{n} 分前";
    AgoHours => "{n} h ago", "{n} 時間前";
    AgoDays => "{n} days ago", "{n} 日前";
    // Traffic chart
    ChartLabel => "Traffic rate from the rx/tx bytes counters, in bit/s", "受信/送信のトラフィック レート (bit/s)";
    ChartRx => "received", "受信";
    ChartTx => "sent", "送信";
    ChartWaiting => "The rate appears after two samples (every 2 s).", "2 回の計測 (2 秒ごと) の後にレートが表示されます。";
    ChartWindow => "last {n} min", "直近 {n} 分";
    // Diagram
    EmptyDiagram => "No virtual networks yet:", "仮想ネットワークはまだありません:";
    CreateOne => "create one", "作成する";
    Bench500 => "Live validation, 500 VNets (ms)", "ライブ検証、500 VNet (ミリ秒)";
    BenchLarge => "Validation, 2,000 VNets / 10,000 sites / 20,000 prefixes (ms)", "検証、2,000 VNet / 10,000 サイト / 20,000 プレフィックス (ミリ秒)";
}

/// The texts of a resource kind: its list's title and its form's headings.
pub trait KindText {
    fn title(self) -> Key;
    fn new_key(self) -> Key;
    fn edit_key(self) -> Key;
}

impl KindText for Kind {
    fn title(self) -> Key {
        match self {
            Kind::Vnet => Key::Vnets,
            Kind::Gateway => Key::Gateways,
            Kind::Site => Key::Sites,
            Kind::Connection => Key::Connections,
            Kind::PointToSite => Key::PointToSite,
        }
    }

    fn new_key(self) -> Key {
        match self {
            Kind::Vnet => Key::NewVnet,
            Kind::Gateway => Key::NewGateway,
            Kind::Site => Key::NewSite,
            Kind::Connection => Key::NewConnection,
            Kind::PointToSite => Key::NewP2s,
        }
    }

    fn edit_key(self) -> Key {
        match self {
            Kind::Vnet => Key::EditVnet,
            Kind::Gateway => Key::EditGateway,
            Kind::Site => Key::EditSite,
            Kind::Connection => Key::EditConnection,
            Kind::PointToSite => Key::EditP2s,
        }
    }
}

/// `key`'s text in `lang` with each `{name}` replaced by its value.
pub fn tf(lang: Lang, key: Key, args: &[(&str, &str)]) -> String {
    let mut s = t(lang, key).to_owned();
    for (k, v) in args {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// The shared messages' language for `lang`.
pub fn ml(lang: Lang) -> messages::Lang {
    match lang {
        Lang::En => messages::Lang::En,
        Lang::Ja => messages::Lang::Ja,
    }
}

/// A violation's detail in `lang`, with its facts (the shared templates).
pub fn violation_text(lang: Lang, v: &isthmus_shared::validate::Violation) -> String {
    messages::violation(v, ml(lang))
}

/// The rule sentence in `lang`.
pub fn rule_text(lang: Lang, rule: RuleId) -> &'static str {
    messages::rule(rule, ml(lang))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{name}` placeholders of a text, sorted.
    fn placeholders(s: &str) -> Vec<&str> {
        let mut out: Vec<&str> = s
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(p, _)| p))
            .collect();
        out.sort_unstable();
        out
    }

    /// Latin words a Japanese text may keep: product and protocol names, options and values
    /// typed as they are, units (the browser test `japanese.spec.ts` allows the same).
    const ALLOWED: &[&str] = &[
        "Isthmus",
        "VPN",
        "VNet",
        "IP",
        "IPv4",
        "IPv6",
        "DNS",
        "TCP",
        "MSS",
        "MTU",
        "QR",
        "P2S",
        "WireGuard",
        "SKU",
        "isthmus-worker",
        "server",
        "token",
        "URL",
        "TOKEN",
        "public-address",
        "ISTHMUS_PUBLIC_ADDRESS",
        "wg-quick",
        "PostUp",
        "BGP",
        "B",
        "kB",
        "MB",
        "GB",
        "bit",
        "HTTP",
        "LIM-6",
        "s",
        // Issue 17: protocol, SA and algorithm names, written as they are in Japanese documents.
        "IPsec",
        "IKE",
        "IKEv2",
        "ESP",
        "SA",
        "CHILD",
        "SPI",
        "PSK",
        "PRF",
        "DH",
        "FQDN",
        "UDP",
        "KB",
        "strongSwan",
        "swanctl",
        "conf",
        "load-all",
        "ID",
    ];

    #[test]
    fn every_text_exists_in_both_languages_with_the_same_placeholders() {
        for &key in Key::ALL {
            let (en, ja) = (t(Lang::En, key), t(Lang::Ja, key));
            assert!(!en.trim().is_empty() && !ja.trim().is_empty(), "{key:?}");
            assert_eq!(placeholders(en), placeholders(ja), "{key:?}: {en} / {ja}");
        }
    }

    #[test]
    fn japanese_texts_have_no_english_words() {
        for &key in Key::ALL {
            let ja = t(Lang::Ja, key);
            let without_placeholders: String = ja
                .split('{')
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part
                    } else {
                        part.split_once('}').map_or(part, |(_, rest)| rest)
                    }
                })
                .collect();
            for word in without_placeholders
                .split(|ch: char| !(ch.is_ascii_alphanumeric() || "-_".contains(ch)))
                .filter(|w| w.chars().any(|ch| ch.is_ascii_alphabetic()))
                .map(|w| w.trim_matches('-'))
            {
                assert!(
                    ALLOWED.contains(&word),
                    "{key:?}: English word {word:?} in {ja}"
                );
            }
        }
    }
}
