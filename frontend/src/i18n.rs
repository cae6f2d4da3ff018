//! English and Japanese strings; the choice is remembered in localStorage.

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

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// The remembered language, else the browser's, else English.
pub fn initial_lang() -> Lang {
    if let Some(code) = storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten()) {
        if let Some(lang) = Lang::from_code(&code) {
            return lang;
        }
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

/// The text keys of the portal.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    Title,
    Health,
    Status,
    Version,
    Database,
    Workers,
    NoWorkers,
    WorkerName,
    LastSeen,
    Loading,
    ServerUnreachable,
    Language,
}

pub fn t(lang: Lang, key: Key) -> &'static str {
    use Key::*;
    match (lang, key) {
        (Lang::En, Title) => "Isthmus VPN gateways",
        (Lang::Ja, Title) => "Isthmus VPN ゲートウェイ",
        (Lang::En, Health) => "Service health",
        (Lang::Ja, Health) => "サービスの状態",
        (Lang::En, Status) => "Status",
        (Lang::Ja, Status) => "状態",
        (Lang::En, Version) => "Version",
        (Lang::Ja, Version) => "バージョン",
        (Lang::En, Database) => "Database",
        (Lang::Ja, Database) => "データベース",
        (Lang::En, Workers) => "Connected workers",
        (Lang::Ja, Workers) => "接続中のワーカー",
        (Lang::En, NoWorkers) => {
            "No worker is connected. Start one with: isthmus-worker --server URL --token TOKEN"
        }
        (Lang::Ja, NoWorkers) => {
            "接続中のワーカーはありません。isthmus-worker --server URL --token TOKEN で起動してください"
        }
        (Lang::En, WorkerName) => "Name",
        (Lang::Ja, WorkerName) => "名前",
        (Lang::En, LastSeen) => "Last heartbeat",
        (Lang::Ja, LastSeen) => "最終ハートビート",
        (Lang::En, Loading) => "Loading…",
        (Lang::Ja, Loading) => "読み込み中…",
        (Lang::En, ServerUnreachable) => "The server did not answer",
        (Lang::Ja, ServerUnreachable) => "サーバーから応答がありません",
        (Lang::En, Language) => "Language",
        (Lang::Ja, Language) => "言語",
    }
}
