//! NAT, published ports and forwarding policy in berth's own nftables table (`ip <table>`,
//! "berth" by default), replaced as a whole in one atomic `nft -j -f -` batch each time the
//! wanted state changes.
//!
//! The table (for networks N with bridge `br` and subnet `sub`, and published ports P):
//!
//! ```text
//! chain guard       filter prerouting -300: iifname br ip daddr 127.0.0.0/8 drop
//! chain prerouting  nat prerouting -100:    fib daddr type local jump ports
//! chain output      nat output -100:        fib daddr type local jump ports
//! chain ports:      [ip daddr H] tcp|udp dport HP dnat to C:CP        (one per P)
//! chain postrouting nat postrouting 100:
//!     ip saddr sub oifname != br masquerade                           (masquerade networks)
//!     oifname br ip saddr 127.0.0.0/8 masquerade                      (127.0.0.1 published ports)
//!     oifname br ip saddr sub ct status dnat masquerade               (hairpin)
//! chain forward     filter forward 0:
//!     iifname br oifname != br drop ; oifname br iifname != br drop   (--internal)
//!     iifname br oifname br drop                                      (icc=false, br_netfilter)
//!     oifname br ct state established,related accept
//!     oifname br ct status dnat accept
//!     oifname br iifname != br drop     (no direct routing into a network from elsewhere: other
//!                                        networks and other hosts reach containers only through
//!                                        published ports, as Docker 28 does)
//! ```
//!
//! The `guard` rule undoes what `route_localnet` would otherwise allow: a container sending to
//! 127.0.0.1 through its gateway and reaching the host's loopback-only services.
//!
//! A drop anywhere wins over our accepts, so a foreign `ip filter FORWARD` chain with policy
//! drop (what dockerd sets) is handled separately by [`crate::foreign_forward`]. This module
//! knows nothing of containers or address management: the engine says what the table must hold.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;

use nftables::batch::Batch;
use nftables::expr::{
    CT, Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix,
};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{Match, NAT, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::link::check_ifname;
use crate::{NetworkError, Result, foreign_forward};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// "tcp" or "udp".
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one network needs: its bridge and subnet, and how it is isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    /// Masquerade traffic leaving the host (false for `--internal` and `ip-masq=false`).
    pub masquerade: bool,
    /// `--internal`: no traffic between the bridge and any other interface.
    pub internal: bool,
    /// Inter-container communication on the bridge (false: dropped; needs br_netfilter).
    pub icc: bool,
}

/// One published port: `host_ip:host_port/proto` to `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    pub proto: Proto,
    /// None = every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    /// The bridge the container is reached through.
    pub bridge: String,
}

/// Everything the table must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<NetRules>,
    pub ports: Vec<PortForward>,
}

/// The table berthd uses: `ip berth`.
pub const DEFAULT_TABLE: &str = "berth";

/// berth's own nftables table. `apply` and `remove` are blocking (they run `nft`, and
/// `iptables` when a foreign FORWARD policy must be checked; tens of milliseconds): call them
/// from a blocking task, one at a time (each apply replaces the whole table).
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
}

impl Firewall {
    /// The table `ip <table>` (berthd uses "berth"; tests use their own names).
    pub fn new(table: &str) -> Self {
        Firewall {
            table: table.to_string(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Replaces the whole table atomically with what `rules` says, then makes sure a foreign
    /// `filter FORWARD` drop policy (dockerd's) lets our bridges' traffic through.
    pub fn apply(&self, rules: &Ruleset) -> Result<()> {
        if rules.networks.iter().any(|n| !n.icc) {
            crate::sysctl::enable_bridge_netfilter()?;
        }
        let batch = self.batch(rules)?;
        run_nft(&batch)?;
        let bridges: Vec<&str> = rules
            .networks
            .iter()
            .filter(|n| !n.internal)
            .map(|n| n.bridge.as_str())
            .collect();
        foreign_forward::sync(&self.foreign_chain(), &bridges)
    }

    /// Deletes the table (and our accepts in a foreign `filter FORWARD`); Ok if missing.
    pub fn remove(&self) -> Result<()> {
        check_table(&self.table)?;
        let mut batch = Batch::new();
        // Adding first makes the delete succeed when the table does not exist.
        batch.add(NfListObject::Table(self.nf_table()));
        batch.delete(NfListObject::Table(self.nf_table()));
        run_nft(&batch.to_nftables())?;
        foreign_forward::sync(&self.foreign_chain(), &[])
    }

    /// The name of our chain in iptables' `filter` table: `<TABLE>-FORWARD`.
    fn foreign_chain(&self) -> String {
        format!("{}-FORWARD", self.table.to_uppercase())
    }

    fn nf_table(&self) -> Table<'static> {
        Table {
            family: NfFamily::IP,
            name: Cow::Owned(self.table.clone()),
            handle: None,
        }
    }

    fn chain(
        &self,
        name: &'static str,
        hook: Option<(NfChainType, NfHook, i32)>,
    ) -> NfListObject<'static> {
        let mut chain = Chain {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Borrowed(name),
            ..Chain::default()
        };
        if let Some((kind, hook, prio)) = hook {
            chain._type = Some(kind);
            chain.hook = Some(hook);
            chain.prio = Some(prio);
            chain.policy = Some(NfChainPolicy::Accept);
        }
        NfListObject::Chain(chain)
    }

    fn rule(&self, chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
        NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            chain: Cow::Borrowed(chain),
            expr: Cow::Owned(expr),
            ..Rule::default()
        })
    }

    /// The whole batch: add (so the delete cannot fail), delete, and re-create the table.
    fn batch(&self, rules: &Ruleset) -> Result<Nftables<'static>> {
        check_table(&self.table)?;
        for n in &rules.networks {
            check_ifname(&n.bridge)?;
            check_prefix(n.prefix)?;
        }
        for p in &rules.ports {
            check_ifname(&p.bridge)?;
        }
        let mut b = Batch::new();
        b.add(NfListObject::Table(self.nf_table()));
        b.delete(NfListObject::Table(self.nf_table()));
        b.add(NfListObject::Table(self.nf_table()));
        b.add(self.chain(
            "guard",
            Some((NfChainType::Filter, NfHook::Prerouting, -300)),
        ));
        b.add(self.chain(
            "prerouting",
            Some((NfChainType::NAT, NfHook::Prerouting, -100)),
        ));
        b.add(self.chain("output", Some((NfChainType::NAT, NfHook::Output, -100))));
        b.add(self.chain(
            "postrouting",
            Some((NfChainType::NAT, NfHook::Postrouting, 100)),
        ));
        b.add(self.chain("forward", Some((NfChainType::Filter, NfHook::Forward, 0))));
        b.add(self.chain("ports", None));

        let external: Vec<&NetRules> = rules.networks.iter().filter(|n| !n.internal).collect();
        for n in &rules.networks {
            b.add(self.rule(
                "guard",
                vec![iifname(&n.bridge, true), daddr_in(LOOPBACK, 8), drop()],
            ));
        }
        for hook in ["prerouting", "output"] {
            b.add(self.rule(hook, vec![fib_daddr_local(), jump("ports")]));
        }
        for p in &rules.ports {
            let mut expr = Vec::new();
            if let Some(ip) = p.host_ip {
                expr.push(daddr_eq(ip));
            }
            expr.push(dport(p.proto, p.host_port));
            expr.push(dnat(p.container_ip, p.container_port));
            b.add(self.rule("ports", expr));
        }

        for n in &rules.networks {
            let subnet = network_address(n.subnet, n.prefix);
            if n.masquerade && !n.internal {
                b.add(self.rule(
                    "postrouting",
                    vec![
                        saddr_in(subnet, n.prefix),
                        oifname(&n.bridge, false),
                        masquerade(),
                    ],
                ));
            }
        }
        for n in &external {
            let subnet = network_address(n.subnet, n.prefix);
            b.add(self.rule(
                "postrouting",
                vec![
                    oifname(&n.bridge, true),
                    saddr_in(LOOPBACK, 8),
                    masquerade(),
                ],
            ));
            b.add(self.rule(
                "postrouting",
                vec![
                    oifname(&n.bridge, true),
                    saddr_in(subnet, n.prefix),
                    ct_in("status", &["dnat"]),
                    masquerade(),
                ],
            ));
        }

        // Drops first: an accept below must never let through what these forbid.
        for n in &rules.networks {
            if n.internal {
                b.add(self.rule(
                    "forward",
                    vec![iifname(&n.bridge, true), oifname(&n.bridge, false), drop()],
                ));
                b.add(self.rule(
                    "forward",
                    vec![oifname(&n.bridge, true), iifname(&n.bridge, false), drop()],
                ));
            }
            if !n.icc {
                b.add(self.rule(
                    "forward",
                    vec![iifname(&n.bridge, true), oifname(&n.bridge, true), drop()],
                ));
            }
        }
        for n in &external {
            b.add(self.rule(
                "forward",
                vec![
                    oifname(&n.bridge, true),
                    ct_in("state", &["established", "related"]),
                    accept(),
                ],
            ));
            b.add(self.rule(
                "forward",
                vec![
                    oifname(&n.bridge, true),
                    ct_in("status", &["dnat"]),
                    accept(),
                ],
            ));
            b.add(self.rule(
                "forward",
                vec![oifname(&n.bridge, true), iifname(&n.bridge, false), drop()],
            ));
        }
        Ok(b.to_nftables())
    }
}

const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 0);

fn run_nft(batch: &Nftables<'_>) -> Result<()> {
    let payload =
        serde_json::to_string(batch).map_err(|e| NetworkError::Firewall(e.to_string()))?;
    match nftables::helper::apply_ruleset_raw(
        &payload,
        nftables::helper::DEFAULT_NFT,
        nftables::helper::DEFAULT_ARGS,
    ) {
        Ok(_) => Ok(()),
        Err(nftables::helper::NftablesError::NftFailed { stderr, .. }) => {
            Err(NetworkError::Firewall(stderr.trim().to_string()))
        }
        Err(e) => Err(NetworkError::Firewall(e.to_string())),
    }
}

/// Table names end up in nft JSON and (upper-cased) as an iptables chain name.
fn check_table(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(NetworkError::Invalid(format!(
            "invalid nftables table name {name:?}"
        )));
    }
    Ok(())
}

fn check_prefix(prefix: u8) -> Result<()> {
    if prefix > 32 {
        return Err(NetworkError::Invalid(format!(
            "invalid prefix length {prefix}"
        )));
    }
    Ok(())
}

/// The subnet's network address (host bits cleared): nft refuses a prefix with host bits set.
fn network_address(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    Ipv4Addr::from(u32::from(addr) & mask)
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn text(s: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(s.to_string()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn eq_or_ne(eq: bool) -> Operator {
    if eq { Operator::EQ } else { Operator::NEQ }
}

fn iifname(name: &str, eq: bool) -> Statement<'static> {
    matches(meta(MetaKey::Iifname), eq_or_ne(eq), text(name))
}

fn oifname(name: &str, eq: bool) -> Statement<'static> {
    matches(meta(MetaKey::Oifname), eq_or_ne(eq), text(name))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(field),
        },
    )))
}

fn prefix(addr: Ipv4Addr, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(text(&addr.to_string())),
        len: u32::from(len),
    }))
}

fn saddr_in(addr: Ipv4Addr, len: u8) -> Statement<'static> {
    matches(payload("ip", "saddr"), Operator::EQ, prefix(addr, len))
}

fn daddr_in(addr: Ipv4Addr, len: u8) -> Statement<'static> {
    matches(payload("ip", "daddr"), Operator::EQ, prefix(addr, len))
}

fn daddr_eq(addr: Ipv4Addr) -> Statement<'static> {
    matches(
        payload("ip", "daddr"),
        Operator::EQ,
        text(&addr.to_string()),
    )
}

fn dport(proto: Proto, port: u16) -> Statement<'static> {
    matches(
        payload(proto.as_str(), "dport"),
        Operator::EQ,
        Expression::Number(u32::from(port)),
    )
}

fn fib_daddr_local() -> Statement<'static> {
    let fib = Fib {
        result: FibResult::Type,
        flags: [FibFlag::Daddr].into_iter().collect(),
    };
    matches(
        Expression::Named(NamedExpression::Fib(fib)),
        Operator::EQ,
        text("local"),
    )
}

/// `ct <key> <flag>[,<flag>]`: any of the flags set (nft's implicit bitmask match).
fn ct_in(key: &'static str, flags: &[&str]) -> Statement<'static> {
    let ct = Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }));
    let right = match flags {
        [one] => text(one),
        many => Expression::List(many.iter().map(|f| text(f)).collect()),
    };
    matches(ct, Operator::IN, right)
}

fn dnat(addr: Ipv4Addr, port: u16) -> Statement<'static> {
    Statement::DNAT(Some(NAT {
        addr: Some(text(&addr.to_string())),
        family: None,
        port: Some(Expression::Number(u32::from(port))),
        flags: None,
    }))
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

fn jump(chain: &'static str) -> Statement<'static> {
    Statement::Jump(nftables::stmt::JumpTarget {
        target: Cow::Borrowed(chain),
    })
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn net(bridge: &str, third: u8) -> NetRules {
        NetRules {
            bridge: bridge.into(),
            subnet: Ipv4Addr::new(10, 199, third, 0),
            prefix: 24,
            masquerade: true,
            internal: false,
            icc: true,
        }
    }

    fn commands(rules: &Ruleset) -> Vec<Value> {
        let batch = Firewall::new("bt").batch(rules).expect("batch");
        let v = serde_json::to_value(&batch).expect("json");
        v["nftables"].as_array().expect("array").clone()
    }

    /// The rules of `chain` as their statement lists.
    fn rules_of(cmds: &[Value], chain: &str) -> Vec<Value> {
        cmds.iter()
            .filter_map(|c| c.get("add").and_then(|a| a.get("rule")))
            .filter(|r| r["chain"] == chain)
            .map(|r| {
                assert_eq!(r["table"], "bt");
                assert_eq!(r["family"], "ip");
                r["expr"].clone()
            })
            .collect()
    }

    #[test]
    fn the_table_is_replaced_atomically() {
        let cmds = commands(&Ruleset::default());
        assert_eq!(
            cmds[0],
            json!({"add": {"table": {"family": "ip", "name": "bt"}}})
        );
        assert_eq!(
            cmds[1],
            json!({"delete": {"table": {"family": "ip", "name": "bt"}}})
        );
        assert_eq!(
            cmds[2],
            json!({"add": {"table": {"family": "ip", "name": "bt"}}})
        );
        let chains: Vec<&Value> = cmds.iter().filter_map(|c| c["add"].get("chain")).collect();
        let nat_pre = chains
            .iter()
            .find(|c| c["name"] == "prerouting")
            .expect("prerouting");
        assert_eq!(nat_pre["type"], "nat");
        assert_eq!(nat_pre["hook"], "prerouting");
        assert_eq!(nat_pre["prio"], -100);
        assert_eq!(nat_pre["policy"], "accept");
        let fwd = chains
            .iter()
            .find(|c| c["name"] == "forward")
            .expect("forward");
        assert_eq!(
            (fwd["type"].as_str(), fwd["hook"].as_str()),
            (Some("filter"), Some("forward"))
        );
        let ports = chains.iter().find(|c| c["name"] == "ports").expect("ports");
        assert!(ports.get("hook").is_none(), "a regular chain");
        // Without networks or ports: only the two jumps into `ports`.
        assert_eq!(rules_of(&cmds, "postrouting").len(), 0);
        assert_eq!(rules_of(&cmds, "forward").len(), 0);
        assert_eq!(
            rules_of(&cmds, "output"),
            vec![json!([
                {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
                {"jump": {"target": "ports"}}
            ])]
        );
    }

    #[test]
    fn masquerade_loopback_and_hairpin() {
        let mut n = net("bt-1", 7);
        n.subnet = Ipv4Addr::new(10, 199, 7, 1); // host bits are cleared
        let cmds = commands(&Ruleset {
            networks: vec![n],
            ports: vec![],
        });
        let post = rules_of(&cmds, "postrouting");
        assert_eq!(
            post[0],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                           "right": {"prefix": {"addr": "10.199.7.0", "len": 24}}}},
                {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "bt-1"}},
                {"masquerade": null}
            ])
        );
        assert_eq!(
            post[1],
            json!([
                {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "bt-1"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                           "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}},
                {"masquerade": null}
            ])
        );
        assert_eq!(
            post[2][2],
            json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}})
        );
        assert_eq!(post.len(), 3);
        let guard = rules_of(&cmds, "guard");
        assert_eq!(guard.len(), 1);
        assert_eq!(guard[0][2], json!({"drop": null}));
    }

    #[test]
    fn published_ports_dnat_from_all_or_one_address() {
        let cmds = commands(&Ruleset {
            networks: vec![net("bt-1", 1)],
            ports: vec![
                PortForward {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: Ipv4Addr::new(10, 199, 1, 2),
                    container_port: 80,
                    bridge: "bt-1".into(),
                },
                PortForward {
                    proto: Proto::Udp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 5353,
                    container_ip: Ipv4Addr::new(10, 199, 1, 3),
                    container_port: 53,
                    bridge: "bt-1".into(),
                },
            ],
        });
        let ports = rules_of(&cmds, "ports");
        assert_eq!(
            ports[0],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
                {"dnat": {"addr": "10.199.1.2", "port": 80}}
            ])
        );
        assert_eq!(
            ports[1],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "127.0.0.1"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 5353}},
                {"dnat": {"addr": "10.199.1.3", "port": 53}}
            ])
        );
        assert_eq!(rules_of(&cmds, "prerouting").len(), 1);
    }

    #[test]
    fn internal_and_icc_drops_come_before_the_accepts() {
        let mut internal = net("bt-int", 2);
        internal.internal = true;
        internal.masquerade = false;
        let mut quiet = net("bt-quiet", 3);
        quiet.icc = false;
        let cmds = commands(&Ruleset {
            networks: vec![internal, quiet],
            ports: vec![],
        });
        let fwd = rules_of(&cmds, "forward");
        let verdict = |r: &Value| {
            r.as_array()
                .and_then(|a| a.last())
                .cloned()
                .expect("verdict")
        };
        assert_eq!(
            fwd[0],
            json!([
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "bt-int"}},
                {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "bt-int"}},
                {"drop": null}
            ])
        );
        assert_eq!(fwd[1][0]["match"]["right"], "bt-int");
        assert_eq!(fwd[1][0]["match"]["left"]["meta"]["key"], "oifname");
        assert_eq!(
            fwd[2],
            json!([
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "bt-quiet"}},
                {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "bt-quiet"}},
                {"drop": null}
            ])
        );
        // Then the external network's accepts (established, dnat) and its closing drop.
        assert_eq!(fwd.len(), 6);
        assert_eq!(
            fwd[3][1]["match"]["right"],
            json!(["established", "related"])
        );
        assert_eq!(verdict(&fwd[3]), json!({"accept": null}));
        assert_eq!(verdict(&fwd[4]), json!({"accept": null}));
        assert_eq!(verdict(&fwd[5]), json!({"drop": null}));
        // An internal network has no masquerade, hairpin or loopback NAT.
        let post = rules_of(&cmds, "postrouting");
        assert!(post.iter().all(|r| !r.to_string().contains("bt-int")));
    }

    #[test]
    fn bad_names_are_refused() {
        let mut n = net("bad name", 1);
        assert!(
            Firewall::new("bt")
                .batch(&Ruleset {
                    networks: vec![n.clone()],
                    ports: vec![]
                })
                .is_err()
        );
        n.bridge = "ok".into();
        assert!(
            Firewall::new("bad table")
                .batch(&Ruleset {
                    networks: vec![n],
                    ports: vec![]
                })
                .is_err()
        );
        assert!(
            Firewall::new(&"x".repeat(21))
                .batch(&Ruleset::default())
                .is_err()
        );
    }

    #[test]
    fn network_addresses_are_masked() {
        assert_eq!(
            network_address(Ipv4Addr::new(172, 17, 3, 4), 16),
            Ipv4Addr::new(172, 17, 0, 0)
        );
        assert_eq!(
            network_address(Ipv4Addr::new(10, 1, 2, 3), 0),
            Ipv4Addr::UNSPECIFIED
        );
        assert_eq!(
            network_address(Ipv4Addr::new(10, 1, 2, 3), 32),
            Ipv4Addr::new(10, 1, 2, 3)
        );
    }
}
