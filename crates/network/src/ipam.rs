//! IPv4 address management: subnets (parsing, overlap), the pools that hand out container
//! addresses in one network (never the same address twice, none leaked: the caller releases what
//! it allocated), and the choice of a free subnet for a new network from the default address
//! pools, skipping subnets already used by other networks or by the host's own routes.
//!
//! Pure data: no netlink, no files except [`host_routes`], which reads `/proc/net/route`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::{NetworkError, Result};

/// An IPv4 subnet in CIDR form; the address is kept as given (`172.17.0.1/16` stays so for
/// `--bip`), [`Subnet::network`] gives the masked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// `addr/prefix`, with `prefix` ≤ 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if prefix > 32 {
            return Err(NetworkError::Invalid(format!(
                "invalid CIDR address: {addr}/{prefix}"
            )));
        }
        Ok(Subnet { addr, prefix })
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The subnet with its host bits cleared (`172.17.0.0/16`).
    pub fn network(&self) -> Subnet {
        Subnet {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    /// Whether the address as given is the network address (no host bits set).
    pub fn is_network(&self) -> bool {
        self.network().addr == self.addr
    }

    /// The first and last addresses of the subnet, as integers.
    fn bounds(&self) -> (u32, u32) {
        let first = u32::from(self.addr) & self.mask();
        (first, first | !self.mask())
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let (a, b) = self.bounds();
        (a..=b).contains(&u32::from(ip))
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let (a1, b1) = self.bounds();
        let (a2, b2) = other.bounds();
        a1 <= b2 && a2 <= b1
    }

    /// The first address after the network address (Docker's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        let (a, b) = self.bounds();
        Ipv4Addr::from(if b > a { a + 1 } else { a })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetworkError;

    /// `a.b.c.d/n`; a bare address is a /32.
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || NetworkError::Invalid(format!("invalid CIDR address: {s}"));
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, p.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        let addr: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        Subnet::new(addr, prefix).map_err(|_| bad())
    }
}

/// The addresses of one network: which are taken, and where dynamic ones come from.
#[derive(Debug, Clone)]
pub struct Pool {
    subnet: Subnet,
    range: Subnet,
    gateway: Option<Ipv4Addr>,
    used: BTreeSet<u32>,
}

impl Pool {
    /// A pool on `subnet` (masked), handing out dynamic addresses from `range` (the whole
    /// subnet when None; it must lie inside the subnet), with `gateway` (when Some) never given
    /// to a container. The network and broadcast addresses are never handed out.
    pub fn new(subnet: Subnet, range: Option<Subnet>, gateway: Option<Ipv4Addr>) -> Result<Pool> {
        let subnet = subnet.network();
        let range = match range {
            Some(r) => {
                let r = r.network();
                if !subnet.contains(r.network().addr) || r.prefix < subnet.prefix {
                    return Err(NetworkError::Invalid(format!(
                        "Invalid ip-range {r}: it must be inside subnet {subnet}"
                    )));
                }
                r
            }
            None => subnet,
        };
        if let Some(g) = gateway
            && !subnet.contains(g)
        {
            return Err(NetworkError::Invalid(format!(
                "Invalid gateway {g}: it must be inside subnet {subnet}"
            )));
        }
        Ok(Pool {
            subnet,
            range,
            gateway,
            used: BTreeSet::new(),
        })
    }

    /// The (masked) subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    fn reserved(&self, ip: u32) -> bool {
        let (first, last) = self.subnet.bounds();
        let small = self.subnet.prefix >= 31;
        (!small && (ip == first || ip == last)) || self.gateway.is_some_and(|g| u32::from(g) == ip)
    }

    /// A specific address (`--ip`) or the lowest free one in the range.
    pub fn allocate(&mut self, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        if let Some(ip) = want {
            if !self.subnet.contains(ip) {
                return Err(NetworkError::Invalid(format!(
                    "Invalid address {ip}: It does not belong to any of this network's subnets"
                )));
            }
            let n = u32::from(ip);
            if self.reserved(n) || !self.used.insert(n) {
                return Err(NetworkError::Exhausted(format!(
                    "Address already in use: {ip}"
                )));
            }
            return Ok(ip);
        }
        let (first, last) = self.range.bounds();
        let free = (first..=last).find(|n| !self.reserved(*n) && !self.used.contains(n));
        match free {
            Some(n) => {
                self.used.insert(n);
                Ok(Ipv4Addr::from(n))
            }
            None => Err(NetworkError::Exhausted(format!(
                "no available IPv4 addresses on this network's address pools: {}",
                self.subnet
            ))),
        }
    }

    /// Marks an address taken again (rebuilding the pool from running containers); false when
    /// it is outside the subnet or already taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        self.subnet.contains(ip) && self.used.insert(u32::from(ip))
    }

    /// Gives an address back; unknown addresses are ignored.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }

    /// How many addresses are taken.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

/// One default address pool: `base` split into subnets of `size` bits (Docker's
/// `--default-address-pool base=172.17.0.0/16,size=16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Subnet,
    pub size: u8,
}

impl AddressPool {
    /// Docker's defaults: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 … 192.168.240.0/20.
    pub fn defaults() -> Vec<AddressPool> {
        vec![
            AddressPool {
                base: Subnet {
                    addr: Ipv4Addr::new(172, 17, 0, 0),
                    prefix: 16,
                },
                size: 16,
            },
            AddressPool {
                base: Subnet {
                    addr: Ipv4Addr::new(172, 18, 0, 0),
                    prefix: 15,
                },
                size: 16,
            },
            AddressPool {
                base: Subnet {
                    addr: Ipv4Addr::new(172, 20, 0, 0),
                    prefix: 14,
                },
                size: 16,
            },
            AddressPool {
                base: Subnet {
                    addr: Ipv4Addr::new(172, 24, 0, 0),
                    prefix: 14,
                },
                size: 16,
            },
            AddressPool {
                base: Subnet {
                    addr: Ipv4Addr::new(172, 28, 0, 0),
                    prefix: 14,
                },
                size: 16,
            },
            AddressPool {
                base: Subnet {
                    addr: Ipv4Addr::new(192, 168, 0, 0),
                    prefix: 16,
                },
                size: 20,
            },
        ]
    }

    /// `base=10.10.0.0/16,size=24` (the daemon flag's syntax).
    pub fn parse(s: &str) -> Result<AddressPool> {
        let mut base = None;
        let mut size = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("base", v)) => base = Some(v.parse::<Subnet>()?.network()),
                Some(("size", v)) => {
                    size = Some(v.parse::<u8>().map_err(|_| {
                        NetworkError::Invalid(format!("invalid default address pool size: {v}"))
                    })?)
                }
                _ => {
                    return Err(NetworkError::Invalid(format!(
                        "invalid default address pool: {s}"
                    )));
                }
            }
        }
        match (base, size) {
            (Some(base), Some(size)) if size >= base.prefix && size <= 32 => {
                Ok(AddressPool { base, size })
            }
            _ => Err(NetworkError::Invalid(format!(
                "invalid default address pool: {s}"
            ))),
        }
    }

    /// The subnets of this pool, in order.
    fn subnets(&self) -> impl Iterator<Item = Subnet> + '_ {
        let (first, _) = self.base.bounds();
        let count: u64 = 1u64 << (self.size - self.base.prefix);
        let step: u64 = 1u64 << (32 - u32::from(self.size));
        (0..count).filter_map(move |i| {
            let a = u64::from(first) + i * step;
            u32::try_from(a).ok().map(|a| Subnet {
                addr: Ipv4Addr::from(a),
                prefix: self.size,
            })
        })
    }
}

/// The first subnet of `pools` that overlaps none of `taken` (other networks' subnets and the
/// host's routes).
pub fn next_subnet(pools: &[AddressPool], taken: &[Subnet]) -> Result<Subnet> {
    pools
        .iter()
        .flat_map(AddressPool::subnets)
        .find(|s| !taken.iter().any(|t| t.overlaps(s)))
        .ok_or_else(|| {
            NetworkError::Exhausted(
                "all predefined address pools have been fully subnetted".to_string(),
            )
        })
}

/// The destinations of the host's IPv4 routes other than the default route (moby checks new
/// networks against them so a container subnet never hides a host network).
pub fn host_routes() -> Vec<Subnet> {
    std::fs::read_to_string("/proc/net/route")
        .map(|s| parse_proc_route(&s))
        .unwrap_or_default()
}

/// `/proc/net/route`: the routes after the header line.
fn parse_proc_route(text: &str) -> Vec<Subnet> {
    text.lines().skip(1).filter_map(parse_route_line).collect()
}

/// One line of `/proc/net/route` (interface, hex destination, …, hex mask): its destination
/// subnet, or None for the default route and unreadable lines.
pub fn parse_route_line(line: &str) -> Option<Subnet> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
    let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
    if mask == 0 {
        return None;
    }
    // The kernel prints the address's bytes as a native-endian integer.
    let dest = Ipv4Addr::from(dest.to_ne_bytes());
    let prefix = u8::try_from(mask.count_ones()).ok()?;
    Some(Subnet { addr: dest, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        x.parse().unwrap()
    }

    #[test]
    fn subnets_parse_mask_and_overlap() {
        let a = s("172.17.0.1/16");
        assert_eq!(a.network().to_string(), "172.17.0.0/16");
        assert!(!a.is_network());
        assert!(a.contains("172.17.255.255".parse().unwrap()));
        assert!(!a.contains("172.18.0.0".parse().unwrap()));
        assert!(a.overlaps(&s("172.17.5.0/24")));
        assert!(s("172.17.5.0/24").overlaps(&a));
        assert!(!a.overlaps(&s("172.18.0.0/16")));
        assert_eq!(a.first_host().to_string(), "172.17.0.1");
        assert!("300.1.1.1/8".parse::<Subnet>().is_err());
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert_eq!(s("10.1.2.3").prefix, 32);
    }

    #[test]
    fn pool_hands_out_lowest_free_and_never_twice() {
        let sub = s("10.9.0.0/29");
        let mut p = Pool::new(sub, None, Some(sub.first_host())).unwrap();
        let got: Vec<String> = (0..5)
            .map(|_| p.allocate(None).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        assert!(p.allocate(None).is_err(), "broadcast is never handed out");
        p.release("10.9.0.3".parse().unwrap());
        assert_eq!(p.allocate(None).unwrap().to_string(), "10.9.0.3");
        assert_eq!(p.in_use(), 5);
    }

    #[test]
    fn specific_addresses_and_ranges() {
        let sub = s("10.9.0.0/24");
        let mut p = Pool::new(sub, Some(s("10.9.0.128/25")), Some(sub.first_host())).unwrap();
        assert_eq!(p.allocate(None).unwrap().to_string(), "10.9.0.128");
        assert_eq!(
            p.allocate(Some("10.9.0.7".parse().unwrap()))
                .unwrap()
                .to_string(),
            "10.9.0.7"
        );
        let e = p.allocate(Some("10.9.0.7".parse().unwrap())).unwrap_err();
        assert!(e.to_string().contains("Address already in use"), "{e}");
        let e = p.allocate(Some("10.8.0.7".parse().unwrap())).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        assert!(p.allocate(Some(sub.first_host())).is_err(), "gateway");
        assert!(Pool::new(sub, Some(s("10.10.0.0/25")), None).is_err());
        assert!(Pool::new(sub, None, Some("10.10.0.1".parse().unwrap())).is_err());
        assert!(p.reserve("10.9.0.9".parse().unwrap()));
        assert!(!p.reserve("10.9.0.9".parse().unwrap()));
    }

    #[test]
    fn next_subnet_skips_taken_ones() {
        let pools = AddressPool::defaults();
        assert_eq!(
            next_subnet(&pools, &[]).unwrap().to_string(),
            "172.17.0.0/16"
        );
        let taken = [s("172.17.0.0/16"), s("172.18.3.0/24")];
        assert_eq!(
            next_subnet(&pools, &taken).unwrap().to_string(),
            "172.19.0.0/16"
        );
        let p = AddressPool::parse("base=10.123.0.0/16,size=24").unwrap();
        assert_eq!(
            next_subnet(&[p], &[s("10.123.0.0/24")])
                .unwrap()
                .to_string(),
            "10.123.1.0/24"
        );
        assert!(AddressPool::parse("base=10.0.0.0/16,size=8").is_err());
        assert!(next_subnet(&[p], &[s("10.123.0.0/16")]).is_err());
    }

    #[test]
    fn proc_net_route_lines() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r: Vec<String> = parse_proc_route(text)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(r, ["10.0.2.0/24", "172.17.0.0/16"]);
    }
}
