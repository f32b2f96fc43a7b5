//! Coexistence with a dockerd on the same host: dockerd (like any iptables user that sets
//! `iptables -P FORWARD DROP`) leaves iptables' `filter FORWARD` chain with policy drop, and a
//! drop verdict in any table is final, so accepts in berth's own table cannot let our bridges'
//! traffic through.
//!
//! When that chain exists with policy drop and there are bridges to serve, we do what netavark
//! does, in iptables' own syntax (through `iptables-restore --noflush`, so iptables and dockerd
//! can still read and change the table): one chain `<TABLE>-FORWARD` holding accepts for our
//! bridges (`-i br`; `-o br` for established/related and DNAT'd connections), and one jump to it
//! appended at the end of `FORWARD` (after dockerd's and the user's `DOCKER-USER` rules). When
//! no bridge needs it, or the policy is no longer drop, the jump and the chain are removed.
//! Nothing else in the foreign table is touched; our own table's drops (internal networks,
//! icc=false) still win over these accepts. Without an `iptables` binary, or with an
//! accepting `FORWARD`, nothing is done.
//!
//! The check runs at every `Firewall::apply` (one `iptables -S` process), so a dockerd started
//! after berthd is handled at the next change of the ruleset. This module knows nothing of
//! nftables or containers.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{NetworkError, Result};

/// What `iptables -S` says about the `filter` table.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ForwardState {
    /// `FORWARD` has policy DROP.
    pub(crate) policy_drop: bool,
    /// Our chain exists.
    pub(crate) has_chain: bool,
    /// `FORWARD` jumps to our chain.
    pub(crate) has_jump: bool,
}

/// Brings our chain in iptables' `filter` table in line with `bridges` (see the module doc).
/// A failing `iptables -S` is logged and ignored; a failing `iptables-restore` is an error.
pub(crate) fn sync(chain: &str, bridges: &[&str]) -> Result<()> {
    let listing = match Command::new("iptables")
        .args(["-w", "-S"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            tracing::warn!(stderr = %String::from_utf8_lossy(&out.stderr).trim(), "iptables -S failed");
            return Ok(());
        }
        // No iptables: nobody can have set a drop policy through it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "running iptables");
            return Ok(());
        }
    };
    let state = parse(&listing, chain);
    let Some(script) = script(chain, bridges, &state) else {
        return Ok(());
    };
    if let Err(e) = restore(&script) {
        tracing::warn!(error = %e, chain, "updating iptables FORWARD for berth's bridges");
        return Err(e);
    }
    Ok(())
}

/// Reads the policy of `FORWARD` and whether our chain and the jump to it exist.
pub(crate) fn parse(listing: &str, chain: &str) -> ForwardState {
    let jump = format!("-A FORWARD -j {chain}");
    let new = format!("-N {chain}");
    let mut state = ForwardState::default();
    for line in listing.lines().map(str::trim) {
        if line == "-P FORWARD DROP" {
            state.policy_drop = true;
        } else if line == new {
            state.has_chain = true;
        } else if line == jump {
            state.has_jump = true;
        }
    }
    state
}

/// The `iptables-restore --noflush` input that gets from `state` to what `bridges` need, or
/// None when nothing is to be done. A `:chain` line flushes an existing chain.
pub(crate) fn script(chain: &str, bridges: &[&str], state: &ForwardState) -> Option<String> {
    let mut s = String::from("*filter\n");
    if state.policy_drop && !bridges.is_empty() {
        s.push_str(&format!(":{chain} - [0:0]\n"));
        for br in bridges {
            s.push_str(&format!("-A {chain} -i {br} -j ACCEPT\n"));
            s.push_str(&format!(
                "-A {chain} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            ));
            s.push_str(&format!(
                "-A {chain} -o {br} -m conntrack --ctstate DNAT -j ACCEPT\n"
            ));
        }
        if !state.has_jump {
            s.push_str(&format!("-A FORWARD -j {chain}\n"));
        }
    } else if state.has_chain || state.has_jump {
        if state.has_jump {
            s.push_str(&format!("-D FORWARD -j {chain}\n"));
        }
        if state.has_chain {
            s.push_str(&format!("-F {chain}\n-X {chain}\n"));
        }
    } else {
        return None;
    }
    s.push_str("COMMIT\n");
    Some(s)
}

fn restore(script: &str) -> Result<()> {
    let failed = |e: String| NetworkError::Firewall(format!("iptables-restore: {e}"));
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N DOCKER\n-N DOCKER-USER\n\
        -A FORWARD -j DOCKER-USER\n-A FORWARD -o docker0 -j DOCKER\n";

    #[test]
    fn nothing_is_done_while_forward_accepts() {
        let state = parse(
            "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n",
            "BT-FORWARD",
        );
        assert_eq!(state, ForwardState::default());
        assert_eq!(script("BT-FORWARD", &["br1"], &state), None);
    }

    #[test]
    fn a_drop_policy_gets_our_chain_and_one_jump() {
        let state = parse(DOCKER, "BT-FORWARD");
        assert!(state.policy_drop && !state.has_chain && !state.has_jump);
        let s = script("BT-FORWARD", &["br1", "br2"], &state).expect("script");
        assert_eq!(
            s,
            "*filter\n:BT-FORWARD - [0:0]\n\
             -A BT-FORWARD -i br1 -j ACCEPT\n\
             -A BT-FORWARD -o br1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A BT-FORWARD -o br1 -m conntrack --ctstate DNAT -j ACCEPT\n\
             -A BT-FORWARD -i br2 -j ACCEPT\n\
             -A BT-FORWARD -o br2 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A BT-FORWARD -o br2 -m conntrack --ctstate DNAT -j ACCEPT\n\
             -A FORWARD -j BT-FORWARD\nCOMMIT\n"
        );
        // Already installed: the chain is refilled, no second jump.
        let installed = format!("{DOCKER}-N BT-FORWARD\n-A FORWARD -j BT-FORWARD\n");
        let s = script("BT-FORWARD", &["br1"], &parse(&installed, "BT-FORWARD")).expect("script");
        assert!(!s.contains("-A FORWARD"), "{s}");
        assert!(s.contains(":BT-FORWARD - [0:0]\n"));
    }

    #[test]
    fn no_bridges_remove_the_jump_and_the_chain() {
        let installed = format!(
            "{DOCKER}-N BT-FORWARD\n-A FORWARD -j BT-FORWARD\n-A BT-FORWARD -i br1 -j ACCEPT\n"
        );
        let state = parse(&installed, "BT-FORWARD");
        assert_eq!(
            script("BT-FORWARD", &[], &state).as_deref(),
            Some("*filter\n-D FORWARD -j BT-FORWARD\n-F BT-FORWARD\n-X BT-FORWARD\nCOMMIT\n")
        );
        // The policy went back to accept (dockerd gone, rules flushed): clean up as well.
        let accepting = installed.replace("-P FORWARD DROP", "-P FORWARD ACCEPT");
        assert!(
            script("BT-FORWARD", &["br1"], &parse(&accepting, "BT-FORWARD"))
                .is_some_and(|s| s.contains("-X BT-FORWARD"))
        );
    }
}
