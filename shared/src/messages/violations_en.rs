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
];
