//! The admin CLI as a process: `token create`, `admin create-user`, `export` and `apply`.

use std::process::{Command, Output};

/// Runs the `isthmus` binary on the data directory `data` (no database URL or master key
/// from the environment).
pub(crate) fn isthmus(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_isthmus"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("ISTHMUS_MASTER_KEY")
        .env("ISTHMUS_PASSWORD", "a-long-enough-password")
        .output()
        .expect("isthmus runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const GOOD: &str = r#"
tenants:
  - name: acme
vnets:
  - tenant: acme
    name: hub
    region: westeurope
    address_space: [10.0.0.0/16]
    subnets:
      - name: GatewaySubnet
        prefix: 10.0.255.0/27
gateways:
  - tenant: acme
    name: hub-gw
    vnet: hub
    gateway_type: RouteBased
    sku: VpnGw1
sites:
  - tenant: acme
    name: branch
    device_host: 203.0.113.10
    address_prefixes: [192.168.1.0/24]
    device_public_key: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
connections:
  - tenant: acme
    name: to-branch
    gateway: hub-gw
    kind:
      type: SiteToSite
      site: branch
"#;

#[test]
fn apply_dry_run_then_apply_then_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("topology.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let dry = isthmus(&data, &["apply", "--dry-run", file.to_str().unwrap()]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("+ vnet acme/hub"), "{}", text(&dry));
    assert!(text(&dry).contains("nothing was changed"));
    let empty = isthmus(&data, &["export"]);
    assert!(
        !text(&empty).contains("hub-gw"),
        "dry run wrote nothing: {}",
        text(&empty)
    );

    let applied = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", text(&applied));
    let exported = isthmus(&data, &["export"]);
    let yaml = String::from_utf8_lossy(&exported.stdout).to_string();
    assert!(
        yaml.contains("hub-gw") && yaml.contains("to-branch"),
        "{yaml}"
    );
    assert!(
        yaml.contains("public_endpoint: 127.0.0.1:"),
        "the server allocated an endpoint: {yaml}"
    );
    assert!(
        !yaml.contains("shared_key: ") || yaml.contains("shared_key: null"),
        "no secret exported: {yaml}"
    );

    // Re-applying the export changes nothing.
    std::fs::write(&file, &yaml).unwrap();
    let again = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(text(&again).contains("no changes"), "{}", text(&again));
}

#[test]
fn gateway_mss_clamp_round_trips_through_export_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("topology.yaml");
    let off = GOOD.replace(
        "    sku: VpnGw1\n",
        "    sku: VpnGw1\n    mss_clamp: false\n",
    );
    assert_ne!(off, GOOD);
    std::fs::write(&file, &off).unwrap();
    let applied = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", text(&applied));
    let yaml = text(&isthmus(&data, &["export"]));
    assert!(yaml.contains("mss_clamp: false"), "{yaml}");
    // Re-applying the export changes nothing; switching it back on is a change.
    std::fs::write(&file, &yaml).unwrap();
    let again = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(text(&again).contains("no changes"), "{}", text(&again));
    std::fs::write(&file, yaml.replace("mss_clamp: false", "mss_clamp: true")).unwrap();
    let on = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(on.status.success(), "{}", text(&on));
    assert!(text(&on).contains("~ gateway acme/hub-gw"), "{}", text(&on));
    let yaml = text(&isthmus(&data, &["export"]));
    assert!(yaml.contains("mss_clamp: true"), "{yaml}");
}

#[test]
fn gw_3_without_workers_the_servers_public_address_is_the_endpoint_host_comma_list_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("topology.yaml");
    std::fs::write(&file, GOOD).unwrap();
    // The worker's ISTHMUS_PUBLIC_ADDRESS form (a comma-separated list) is accepted: the first.
    let applied = isthmus(
        &data,
        &[
            "--public-address",
            "198.51.100.1,2001:db8::1",
            "apply",
            file.to_str().unwrap(),
        ],
    );
    assert!(applied.status.success(), "{}", text(&applied));
    let yaml = text(&isthmus(&data, &["export"]));
    assert!(
        yaml.contains("public_endpoint: 198.51.100.1:51820"),
        "{yaml}"
    );
}

#[test]
fn gw_7_apply_with_a_30_gateway_subnet_fails_naming_the_rule_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, GOOD.replace("10.0.255.0/27", "10.0.255.0/30")).unwrap();
    let out = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("GW-7"), "{}", text(&out));
    assert!(text(&out).contains("nothing was saved"), "{}", text(&out));
    let exported = isthmus(&data, &["export"]);
    assert!(!text(&exported).contains("hub"), "{}", text(&exported));
}

#[test]
fn apply_names_yaml_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("typo.yaml");
    std::fs::write(&file, "vnets:\n  - tenant: a\n    name: x\n    regoin: y\n").unwrap();
    let out = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("regoin"), "{}", text(&out));
}

#[test]
fn token_and_user_creation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = isthmus(&data, &["token", "create", "--worker", "edge-1"]);
    assert!(t.status.success(), "{}", text(&t));
    assert!(
        String::from_utf8_lossy(&t.stdout)
            .trim()
            .starts_with("isw_")
    );
    let u = isthmus(&data, &["admin", "create-user", "carol"]);
    assert!(u.status.success(), "{}", text(&u));
    let again = isthmus(&data, &["admin", "create-user", "carol"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
}
