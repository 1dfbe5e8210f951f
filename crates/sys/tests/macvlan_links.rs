//! Privileged tests of macvlan/ipvlan/802.1q/dummy link creation: run only as root, inside
//! throwaway network namespaces (never the root namespace); otherwise they print
//! `SKIP: reason`. Kinds this kernel lacks must fail with the kernel option named.

use std::fs::File;
use std::os::fd::AsFd;

use berth_sys::link::{self, ChildLink, IpvlanFlag, IpvlanMode, LinkError, MacAddr, MacvlanMode};
use berth_sys::netns::run_in;
use berth_sys::test_netns_or_skip;
use berth_sys::testing::TestNetns;

fn inside<T: Send>(ns: &TestNetns, f: impl FnOnce() -> T + Send) -> T {
    run_in(&ns.path(), f).expect("enter test netns")
}

fn child<'a>(name: &'a str, parent: &'a str) -> ChildLink<'a> {
    ChildLink {
        name,
        parent,
        mtu: None,
        mac: None,
        netns: None,
    }
}

#[test]
fn macvlan_child_is_born_in_another_namespace_with_mac_and_mtu() {
    let host = test_netns_or_skip!();
    let sandbox = test_netns_or_skip!();
    let sb = File::open(sandbox.path()).unwrap();
    let mac: MacAddr = "02:42:0a:00:00:09".parse().unwrap();
    inside(&host, || {
        link::create_veth("nic0", "nic0p", 1500).unwrap();
        let spec = ChildLink {
            mtu: Some(1400),
            mac: Some(mac),
            netns: Some(sb.as_fd()),
            ..child("eth0", "nic0")
        };
        link::create_macvlan(&spec, MacvlanMode::Bridge).unwrap();
        // Not here: it was born in the sandbox.
        assert!(matches!(
            link::link_by_name("eth0"),
            Err(LinkError::NotFound { .. })
        ));
        let err = link::create_macvlan(&child("mv1", "nope0"), MacvlanMode::Bridge).unwrap_err();
        assert!(matches!(err, LinkError::NotFound { .. }), "{err}");
    });
    let l = inside(&sandbox, || link::link_by_name("eth0").unwrap());
    assert_eq!(l.kind.as_deref(), Some("macvlan"));
    assert_eq!(l.mac, Some(mac));
    assert_eq!(l.mtu, 1400);
}

#[test]
fn bridge_port_parent_is_busy_and_passthru_is_exclusive() {
    let host = test_netns_or_skip!();
    inside(&host, || {
        link::create_veth("nic1", "nic1p", 1500).unwrap();
        link::create_bridge("br-t9", 1500).unwrap();
        link::set_master("nic1p", "br-t9").unwrap();
        let err = link::create_macvlan(&child("mv2", "nic1p"), MacvlanMode::Bridge).unwrap_err();
        assert!(matches!(err, LinkError::ParentBusy { .. }), "{err}");
        assert!(err.to_string().contains("bridge"), "{err}");

        link::create_macvlan(&child("mv3", "nic1"), MacvlanMode::Passthru).unwrap();
        let err = link::create_macvlan(&child("mv4", "nic1"), MacvlanMode::Bridge).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
    });
}

/// Each kind either works or fails naming its kernel option (this kernel lacks all three).
#[test]
fn missing_kinds_name_their_kernel_option() {
    let host = test_netns_or_skip!();
    inside(&host, || {
        link::create_veth("nic2", "nic2p", 1500).unwrap();
        let checks: [(&str, Result<(), LinkError>); 3] = [
            (
                "CONFIG_IPVLAN",
                link::create_ipvlan(&child("iv0", "nic2"), IpvlanMode::L2, IpvlanFlag::Bridge),
            ),
            (
                "CONFIG_VLAN_8021Q",
                link::create_vlan("nic2.10", "nic2", 10),
            ),
            ("CONFIG_DUMMY", link::create_dummy("dm0")),
        ];
        for (config, res) in checks {
            match res {
                Ok(()) => eprintln!("{config}: available on this kernel"),
                Err(e) => {
                    assert!(matches!(e, LinkError::KindUnsupported { .. }), "{e}");
                    assert!(e.to_string().contains(config), "{e}");
                }
            }
        }
    });
}
