//! English templates of every (rule, case); rendering one equals the validator's message.

use crate::rules::RuleId;
use RuleId::*;

/// `visible_to`'s answer when only another tenant's resources break `rule`.
pub(super) const OTHER_TENANT_TEMPLATE: &str = "the change breaks rule {rule} at a resource of another tenant that one of your connections reaches; undo the part of the change that reaches the other tenant (an address space, a site or a connection to it), or agree on it with that tenant's owner";

/// (rule, case, template).
pub(super) const TEMPLATES: &[(RuleId, &str, &str)] = &[
    (
        Name1,
        "tenant",
        "{count} tenants are named \"{name}\"; tenant names are unique",
    ),
    (
        Name1,
        "resource",
        "more than one {kind} is named \"{name}\" in tenant \"{tenant}\"; names are unique per kind within a tenant: rename or delete one",
    ),
    (
        Name1,
        "p2s",
        "gateway \"{name}\" has more than one point-to-site configuration; keep one",
    ),
    (
        Name1,
        "subnet",
        "more than one subnet is named \"{name}\"; rename one",
    ),
    (
        Name1,
        "route_source",
        "more than one route source is named \"{name}\"; rename one",
    ),
    (
        Name2,
        "empty",
        "{kind} name \"{name}\": a name cannot be empty",
    ),
    (
        Name2,
        "too_long",
        "{kind} name \"{name}\": a name has at most {max} characters, this one has {len}",
    ),
    (
        Name2,
        "first_char",
        "{kind} name \"{name}\": a name starts with a letter or digit",
    ),
    (
        Name2,
        "bad_char",
        "{kind} name \"{name}\": {char_quoted} is not allowed in a name; use ASCII letters, digits, '-', '_' and '.'",
    ),
    (
        Name2,
        "region",
        "the region is empty; give the region label the VNet runs in",
    ),
    (
        Ref1,
        "tenant",
        "tenant \"{tenant}\" does not exist; create it first",
    ),
    (
        Ref1,
        "change",
        "there is no {kind} named {name} to delete; check the name and tenant",
    ),
    (
        Ref1,
        "gateway_vnet",
        "gateway \"{gateway}\" names VNet \"{vnet}\", which does not exist in tenant \"{tenant}\"; create the VNet first or fix the name",
    ),
    (
        Ref1,
        "forced_site",
        "the forced-tunneling site \"{site}\" does not exist in tenant \"{tenant}\"",
    ),
    (
        Ref1,
        "still_used",
        "{kind} \"{name}\" is still used by {used_by_kind} \"{used_by}\"; delete the {used_by_kind} first",
    ),
    (
        Ref1,
        "still_used_remote",
        "{kind} \"{name}\" is still used by {used_by_kind} \"{used_by}\" as its remote gateway; delete the connection first",
    ),
    (
        Ref1,
        "still_used_forced",
        "{kind} \"{name}\" is still used by {used_by_kind} \"{used_by}\" as its forced-tunneling site; clear the gateway's forced-tunneling site first",
    ),
    (
        Ref1,
        "still_used_additional",
        "{kind} \"{name}\" is still used by {used_by_kind} \"{used_by}\" in additional_vnets; remove it from additional_vnets first",
    ),
    (
        Pfx1,
        "",
        "{prefix} has host bits set; did you mean {canonical}?",
    ),
    (
        Pfx2,
        "vnet",
        "VNet \"{vnet}\" has no address space; add at least one prefix",
    ),
    (
        Pfx2,
        "site",
        "site \"{site}\" has no address prefixes; add the on-premises ranges to route through the tunnel",
    ),
    (
        Pfx3,
        "",
        "{prefix} overlaps {other_prefix} in the same list; list each range once (keep the larger prefix or split it)",
    ),
    (
        Pfx4,
        "default",
        "{prefix} is every {family} address, which cannot be {list}: list only the ranges in use, e.g. {private}",
    ),
    (
        Pfx4,
        "default_site",
        "{prefix} is every {family} address, which cannot be {list}: list only the ranges in use, e.g. {private}; to send Internet-bound traffic through this site, set it as the gateway's forced-tunneling site (GW-9) instead",
    ),
    (
        Pfx5,
        "",
        "{prefix} overlaps {reserved_what}, and {reserved_why}, so it cannot be in {list}: use {private}",
    ),
    (
        Pfx6,
        "",
        "{prefix} overlaps {reserved_what}, and {reserved_why}, so it cannot be in {list}: use {private}",
    ),
    (
        Pfx7,
        "",
        "{prefix} overlaps {reserved_what}, and {reserved_why}, so it cannot be in {list}: use {private}",
    ),
    (
        Pfx8,
        "",
        "{prefix} overlaps {reserved_what}, and {reserved_why}, so it cannot be in {list}: use {private}",
    ),
    (
        Sub1,
        "",
        "subnet \"{subnet}\" ({prefix}) is outside the VNet's address space ({address_space}); pick a prefix inside it or extend the address space",
    ),
    (
        Sub2,
        "",
        "subnet \"{subnet}\" ({prefix}) overlaps subnet \"{other_subnet}\" ({other_prefix}); subnets of a VNet are disjoint: shrink or move one of them",
    ),
    (
        Gw11,
        "",
        "the appliance address {address} is outside the VNet's address space ({address_space}); user-defined routes point at an appliance inside the VNet",
    ),
    (
        Gw10,
        "",
        "the gateway's endpoint {endpoint} is a {kind} address: no device on another host can reach it; start the worker that runs the gateway with --public-address ADDRESS (an address of the worker host that devices reach)",
    ),
    (
        Gw3,
        "port_zero",
        "the public endpoint {endpoint} has port 0; the server allocates a real port",
    ),
    (
        Gw3,
        "shared",
        "the public endpoint {endpoint} is also used by another gateway; every gateway gets its own endpoint when it is created: leave it to the server",
    ),
    (
        Key1,
        "",
        "the {what} is not a WireGuard public key: expected 32 bytes in standard base64 (44 characters ending in '='), as printed by `wg pubkey`",
    ),
    (
        Lim2,
        "active_active",
        "SKU {sku} cannot run active-active; pick VpnGw1 or larger, or turn active-active off",
    ),
    (
        Lim1,
        "too_many",
        "gateway \"{gateway}\" has {connections} connections but SKU {sku} allows {limit}; remove {excess} connection(s)",
    ),
    (
        Lim1,
        "too_many_resize",
        "gateway \"{gateway}\" has {connections} connections but SKU {sku} allows {limit}; remove {excess} connection(s) or resize the gateway to {bigger_sku} ({bigger_limit} connections)",
    ),
    (
        Gw9,
        "policy_based",
        "forced tunneling needs a RouteBased gateway: a PolicyBased gateway only sends traffic matching its selectors; change the type or clear the site",
    ),
    (
        Gw9,
        "connection_deleted",
        "connection {connection} carries the forced tunnel of gateway \"{gateway}\" to site \"{site}\"; clear the gateway's forced-tunneling site first, then delete the connection",
    ),
    (
        Gw9,
        "not_connected",
        "the forced-tunneling site \"{site}\" is not connected to gateway \"{gateway}\"; create a site-to-site connection to it first",
    ),
    (
        Gw7,
        "name_case",
        "subnet \"{subnet}\" is not the gateway subnet: the name is case-sensitive; did you mean \"GatewaySubnet\"?",
    ),
    (
        Gw7,
        "appliance",
        "the appliance address {address} is inside GatewaySubnet, which is reserved for the gateway; place the appliance in another subnet",
    ),
    (
        Gw7,
        "missing",
        "VNet \"{vnet}\" has gateway \"{gateway}\" but no subnet named GatewaySubnet; add a GatewaySubnet of at least /{v4_len} (IPv4) or /{v6_len} (IPv6) inside the address space",
    ),
    (
        Gw7,
        "too_small",
        "GatewaySubnet {prefix} is too small: the gateway needs at least a /{max_len} ({family}); use a prefix length of {max_len} or less, e.g. {example}",
    ),
    (
        Gw7,
        "too_small_no_gateway",
        "GatewaySubnet {prefix} is smaller than a gateway needs: a gateway will need at least a /{max_len} ({family}); use a prefix length of {max_len} or less, e.g. {example}",
    ),
    (
        Vnet1,
        "",
        "VNet \"{vnet}\" has more than one gateway; a VNet has at most one: delete the extra gateway",
    ),
    (
        Conn4,
        "ipv6",
        "the device address {host} is IPv6; a site-to-site device needs a public IPv4 address (or a DNS name resolving to one)",
    ),
    (
        Conn4,
        "unusable",
        "the device address {host} is {problem}; a site-to-site device needs a public IPv4 address",
    ),
    (
        Conn4,
        "non_public",
        "the device address {host} is {problem}; the tunnel only comes up if the gateway can reach it (give the device's public IPv4 address)",
    ),
    (
        Port1,
        "",
        "the device port is 0, which no WireGuard device listens on: give the UDP port the device's WireGuard listens on (1 to 65535, usually 51820), or leave it empty for 51820",
    ),
    (
        Gw5,
        "empty",
        "the shared key is empty; use 1 to 128 ASCII letters and digits",
    ),
    (
        Gw5,
        "too_long",
        "the shared key is {len} characters long; at most {max} are allowed (ASCII letters and digits)",
    ),
    (
        Gw5,
        "invalid_char",
        "the shared key contains {char_quoted} at position {position}; only ASCII letters and digits (A-Z, a-z, 0-9) are allowed",
    ),
    // Connections (validate/connections.rs).
    (
        Ref1,
        "connection_gateway",
        "connection \"{connection}\" belongs to gateway \"{gateway}\", which does not exist in tenant \"{tenant}\"; create the gateway first or fix the name",
    ),
    (
        Ref1,
        "connection_site",
        "site \"{site}\" does not exist in tenant \"{tenant}\"; create the local network site first or fix the name",
    ),
    (
        Ref1,
        "remote_gateway",
        "remote gateway \"{gateway}\" does not exist in tenant \"{tenant}\"; create it first or fix the name",
    ),
    (
        Gw2,
        "route_based",
        "gateway \"{gateway}\" is RouteBased: its tunnels use the forwarding table and any-to-any selectors; remove the traffic selectors (they only apply to PolicyBased gateways)",
    ),
    (
        Gw2,
        "vnet_to_vnet",
        "a VNet-to-VNet connection is route-based with any-to-any selectors; remove the traffic selectors",
    ),
    (
        Ref2,
        "own_gateway",
        "a VNet-to-VNet connection cannot point at its own gateway; name the other VNet's gateway",
    ),
    (
        Ref2,
        "duplicate",
        "gateway {gateway} has {count} connections to gateway {remote_gateway}; one VNet-to-VNet connection per pair of gateways: delete the extra ones",
    ),
    (
        Gw6,
        "",
        "VNet-to-VNet needs RouteBased gateways on both ends, but the {end} gateway {gateway} is PolicyBased; recreate it as RouteBased",
    ),
    (
        Conn2,
        "waiting",
        "{status}: this is one half of a VNet-to-VNet tunnel; the tunnel comes up when the other half is created (a VnetToVnet connection on {remote_gateway} naming {gateway}) with the same shared key",
    ),
    (
        Conn2,
        "waiting_cross",
        "{status}: this is one half of a VNet-to-VNet tunnel to gateway {remote_gateway} of another tenant. It connects nothing until that gateway's owner creates the other half (a VnetToVnet connection on {remote_name} naming {gateway}) with the same shared key; if gateway {remote_gateway} does not exist or is not shared with you, check its name with its owner",
    ),
    (
        Conn2,
        "key_mismatch",
        "{status}: the other half of this VNet-to-VNet tunnel, owned by the tenant of gateway {remote_gateway}, carries a different shared key, so the tunnel cannot come up; agree on one key with the owner of {remote_gateway} and set it on this connection (the tunnel comes up once both halves carry it)",
    ),
    (
        Gw4,
        "",
        "the two halves of the VNet-to-VNet tunnel carry different shared keys ({connection} and {other_connection}); set the same key on both in one change (replacing the key of one half of a pair in one tenant replaces both)",
    ),
    (
        Lim2,
        "redundant_active_active",
        "gateway \"{gateway}\" has {count} connections to site \"{site}\"; an active-active gateway has at most two tunnels to one site",
    ),
    (
        Lim2,
        "redundant_turn_on",
        "gateway \"{gateway}\" has {count} connections to site \"{site}\"; turn on active-active to run two tunnels to one site, or delete the extra connection",
    ),
    (
        Lim2,
        "redundant_sku",
        "gateway \"{gateway}\" has {count} connections to site \"{site}\"; SKU {sku} cannot run redundant tunnels; delete the extra connection or move to an active-active capable SKU (VpnGw1 or larger)",
    ),
    (
        Conn3,
        "",
        "PolicyBased gateway \"{gateway}\" has {connections} site-to-site connections (sites {sites_names}); a PolicyBased gateway connects to exactly one site (multi-site needs RouteBased, GW-6): recreate it as RouteBased or delete the extra connections",
    ),
    (
        Gw1,
        "mixed_family",
        "selector ({local}, {remote}) mixes IPv4 and IPv6; both sides of a selector are of one family",
    ),
    (
        Gw1,
        "local_outside",
        "the local side {local} of the selector is outside VNet \"{vnet}\" ({address_space}); a selector pairs a VNet prefix with a site prefix",
    ),
    (
        Gw1,
        "remote_outside",
        "the remote side {remote} of the selector is outside site \"{site}\" ({address_prefixes}); add the range to the site or fix the selector",
    ),
    (
        Key2,
        "own_key",
        "this peer uses the public key of gateway {gateway} itself; generate a separate key pair for it",
    ),
    (
        Key2,
        "shared",
        "{count} peers of gateway {gateway} share one public key; WireGuard tells peers apart by key: give each device or client its own key pair",
    ),
    // Address-space overlaps (validate/overlaps.rs, validate/isolation.rs).
    (
        Lim3,
        "direct",
        "{prefix} of {owner} overlaps {other_prefix} of {other}; gateway {gateway} connects them directly. Address spaces that reach each other must not overlap: renumber one of them or remove the connection",
    ),
    (
        Lim3,
        "transit",
        "{prefix} of {owner} overlaps {other_prefix} of {other}; they reach each other through transit between gateways {gateway} and {other_gateway} (LIM-5). Address spaces that reach each other must not overlap: renumber one of them or remove the connection",
    ),
    (
        Lim3,
        "foreign",
        "{prefix} of {owner} overlaps an address space of another tenant that this connection reaches. Address spaces that reach each other must not overlap: renumber {prefix}, or remove the connection to the other tenant",
    ),
    (
        Lim3,
        "foreign_one",
        "{prefix} of {owner} overlaps an address space of another tenant that this connection reaches (connection {connections_names}). Address spaces that reach each other must not overlap: renumber {prefix}, or remove the connection to the other tenant",
    ),
    (
        Lim3,
        "foreign_many",
        "{prefix} of {owner} overlaps an address space of another tenant that this connection reaches (connections {connections_names}). Address spaces that reach each other must not overlap: renumber {prefix}, or remove the connection to the other tenant",
    ),
    (
        Lim3,
        "site_vnet",
        "{prefix} of site \"{site}\" overlaps {other_prefix} of VNet \"{vnet}\", so the site cannot be connected to VNet \"{vnet}\" (address spaces that reach each other must not overlap); renumber one of them before connecting the site to that VNet's gateway",
    ),
    (
        P2s6,
        "pool",
        "the clients of gateway \"{gateway}\" are configured for several VNets, and {side} overlaps {other_side}; the client address pool must not overlap any VNet or site the clients reach: renumber one of them or drop the VNet from additional_vnets",
    ),
    (
        P2s6,
        "vnets",
        "the clients of gateway \"{gateway}\" are configured for several VNets, and {side} overlaps {other_side}; the VNets a client is configured for must not overlap each other: renumber one of them or drop the VNet from additional_vnets",
    ),
    // Point-to-site (validate/p2s.rs).
    (
        Ref1,
        "p2s_gateway",
        "gateway \"{gateway}\" does not exist in tenant \"{tenant}\"; create it first",
    ),
    (
        Ref1,
        "additional_vnet",
        "VNet \"{vnet}\" does not exist in tenant \"{tenant}\"",
    ),
    (
        P2s1,
        "policy_based",
        "point-to-site works only on RouteBased gateways, and \"{gateway}\" is PolicyBased; recreate the gateway as RouteBased",
    ),
    (
        P2s1,
        "additional_policy_based",
        "VNet \"{vnet}\"'s gateway \"{gateway}\" is PolicyBased; point-to-site clients can only use RouteBased gateways",
    ),
    (
        Conn5,
        "",
        "site-to-site and point-to-site coexist only on a RouteBased gateway; \"{gateway}\" is PolicyBased and has a site-to-site connection: recreate it as RouteBased",
    ),
    (
        Pfx2,
        "pool",
        "the point-to-site configuration has no client address pool; add a prefix that overlaps nothing the clients reach",
    ),
    (
        P2s3,
        "too_many",
        "{count} root certificates are uploaded; at most {limit} are allowed: remove {excess}",
    ),
    (
        P2s3,
        "revoked",
        "client \"{client}\"'s certificate is revoked; it gets no tunnel until it is issued a new certificate (or remove the client)",
    ),
    (
        Name1,
        "root_certificate",
        "{count} root certificates are named \"{name}\"; rename or remove one",
    ),
    (
        Name1,
        "client",
        "more than one client is named \"{name}\"; rename one",
    ),
    (
        Addr1,
        "outside_pool",
        "client address {address} is outside the pool ({pool}); pick an address in the pool",
    ),
    (
        Addr1,
        "shared",
        "address {address} is given to {count} clients; each client needs its own address",
    ),
    (
        P2s6,
        "own_vnet",
        "VNet \"{vnet}\" is the gateway's own VNet; list only other VNets",
    ),
    (
        P2s6,
        "no_gateway",
        "VNet \"{vnet}\" has no gateway, so clients cannot reach it; add a RouteBased gateway to it or remove it from the list",
    ),
    (
        P2s2,
        "too_many",
        "gateway \"{gateway}\" serves {clients} point-to-site clients but SKU {sku} allows {limit}; remove clients",
    ),
    (
        P2s2,
        "too_many_resize",
        "gateway \"{gateway}\" serves {clients} point-to-site clients but SKU {sku} allows {limit}; remove clients or resize to {bigger_sku}",
    ),
    (
        Ipsec1,
        "v2v",
        "connection \"{connection}\" is VNet-to-VNet; IPsec is only for site-to-site connections: set protocol to WireGuard (or leave it out)",
    ),
    (
        Ipsec2,
        "policy",
        "connection \"{connection}\" uses WireGuard, which has no IPsec/IKE policy: remove ipsec_policy, or set protocol to IPsec",
    ),
    (
        Ipsec2,
        "mode",
        "connection \"{connection}\" uses WireGuard, which has no connection mode: set connection_mode to Default (or leave it out), or set protocol to IPsec",
    ),
    (
        Ipsec3,
        "seconds",
        "the {sa} SA lifetime is {value} seconds; give {min} to {max} seconds, or leave it out for the default",
    ),
    (
        Ipsec3,
        "kilobytes",
        "the CHILD SA data lifetime is {value} KB; give {min} to {max} KB, or leave it out for no data limit",
    ),
    (
        Ipsec4,
        "too_long",
        "the IKE identity of site \"{site}\" is {len} characters long; at most {max} are allowed",
    ),
    (
        Ipsec4,
        "whitespace",
        "the IKE identity of site \"{site}\" contains a space; give the identity the device presents (an IPv4 address, a DNS name or user@name) without spaces",
    ),
    (
        Ipsec4,
        "invalid",
        "the IKE identity \"{identity}\" of site \"{site}\" is not an IPv4 address, a DNS name or user@name; give the identity the device presents, or leave it out to use the device address",
    ),
    (
        Ipsec5,
        "shared_host",
        "IPsec connections \"{connection}\" and \"{others}\" of gateway {gateway} both go to the device at {host}; the gateway tells IPsec devices apart by address: keep one of them, disable the others, or use WireGuard for them",
    ),
];
