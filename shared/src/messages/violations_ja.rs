//! Japanese templates of every (rule, case), with the same placeholders as the English ones.

use crate::rules::RuleId;
use RuleId::*;

/// `visible_to`'s answer when only another tenant's resources break `rule`.
pub(super) const OTHER_TENANT_TEMPLATE: &str = "この変更は、あなたの接続から到達する他のテナントのリソースでルール {rule} に違反します。他のテナントに届く部分 (アドレス空間、サイト、そこへの接続) を元に戻すか、そのテナントの所有者と調整してください。";

/// (rule, case, template).
pub(super) const TEMPLATES: &[(RuleId, &str, &str)] = &[(
    Gw5,
    "empty",
    "共有キーが空です。1 ～ 128 文字の英数字 (ASCII) を指定してください。",
)];
