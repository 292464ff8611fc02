//! The network and TCP probes with real sockets in real cgroup v2 directories: a known TCP
//! transfer over loopback between processes of two cgroups shows on the sender's transmit and
//! the receiver's receive counters, the connect on the sender's and the accept on the
//! receiver's TCP counters; a connect to a closed port is one failed connect of the right
//! container.
//!
//! Needs root (loads eBPF, creates cgroups under the cgroup2 mount).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use nodemeter::sources::ebpf::{KernelProbes, NetCounters, Probe, ProbeSelection, TcpCounters};
use nodemeter_tests::cgroup::TestCgroup;

/// Bytes the sender writes.
const TRANSFER: u64 = 8 << 20;

fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run this test as root");
}

fn load(probes: &[Probe]) -> KernelProbes {
    let loaded = KernelProbes::load(&ProbeSelection::all()).unwrap();
    for probe in probes {
        let status = loaded
            .statuses()
            .iter()
            .find(|s| s.name == probe.name())
            .unwrap();
        assert!(
            status.attached,
            "{} not attached: {:?}",
            probe.name(),
            status.reason
        );
    }
    loaded
}

fn network_of(probes: &mut KernelProbes, id: u64) -> NetCounters {
    probes
        .read_network_counters()
        .unwrap()
        .into_iter()
        .find_map(|(cgroup, c)| (cgroup == id).then_some(c))
        .unwrap_or_default()
}

fn tcp_of(probes: &mut KernelProbes, id: u64) -> TcpCounters {
    probes
        .read_tcp_counters()
        .unwrap()
        .into_iter()
        .find_map(|(cgroup, c)| (cgroup == id).then_some(c))
        .unwrap_or_default()
}

fn python(script: &str) -> Command {
    let mut command = Command::new("/usr/bin/python3");
    command
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    command
}

#[test]
fn a_loopback_transfer_between_two_containers_counts_on_both_sides() {
    assert_root();
    let mut probes = load(&[Probe::Network, Probe::Tcp]);
    let receiver_cgroup = TestCgroup::unified("net-receiver").unwrap();
    let sender_cgroup = TestCgroup::unified("net-sender").unwrap();

    // The receiver prints its port, accepts one connection, reads to EOF and prints the count.
    let mut receiver = receiver_cgroup
        .spawn_inside(&mut python(
            "import socket, sys\n\
             l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)\n\
             print(l.getsockname()[1], flush=True)\n\
             c, _ = l.accept(); n = 0\n\
             while True:\n\
             \x20   b = c.recv(1 << 20)\n\
             \x20   if not b: break\n\
             \x20   n += len(b)\n\
             c.close(); l.close(); print(n, flush=True)\n",
        ))
        .unwrap();
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();

    let sender = sender_cgroup
        .spawn_inside(&mut python(&format!(
            "import socket\n\
             s = socket.create_connection(('127.0.0.1', {port}))\n\
             s.sendall(b'x' * {TRANSFER}); s.shutdown(socket.SHUT_WR)\n\
             s.recv(1); s.close()\n"
        )))
        .unwrap();
    assert!(sender.wait_with_output().unwrap().status.success());
    let received: u64 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    assert!(receiver.wait().unwrap().success());
    assert_eq!(received, TRANSFER);

    let sent = network_of(&mut probes, sender_cgroup.id());
    let got = network_of(&mut probes, receiver_cgroup.id());
    eprintln!("sender {sent:?}\nreceiver {got:?}");
    // Bytes are IP lengths: the payload plus at most 52 bytes of IP and TCP headers (with
    // timestamps) per segment. Loopback segments are tens of KiB, so headers add well under
    // 2 %; the handshake and FIN add a few hundred bytes.
    let ceiling = TRANSFER + TRANSFER / 50 + 8192;
    assert!(
        (TRANSFER..=ceiling).contains(&sent.tx_bytes),
        "sender transmitted {} bytes for {TRANSFER}",
        sent.tx_bytes
    );
    assert!(
        (TRANSFER..=ceiling).contains(&got.rx_bytes),
        "receiver received {} bytes for {TRANSFER}",
        got.rx_bytes
    );
    // What goes back is ACKs: headers only.
    assert!(
        got.tx_bytes < TRANSFER / 20,
        "receiver sent {}",
        got.tx_bytes
    );
    assert!(
        sent.rx_bytes < TRANSFER / 20,
        "sender got {}",
        sent.rx_bytes
    );
    // The receiver sees every segment the sender's socket sent. The byte counts differ by a
    // few dozen bytes per segment (measured: 0.04 %), since at ingress the kernel's length of a
    // coalesced segment differs from the egress one; 0.2 % bounds that.
    assert!(
        sent.tx_bytes.abs_diff(got.rx_bytes) <= TRANSFER / 500,
        "{sent:?} {got:?}"
    );
    assert!(sent.tx_packets >= TRANSFER / 65_536 && got.rx_packets >= TRANSFER / 65_536);
    assert!(
        sent.tx_packets.abs_diff(got.rx_packets) <= 2,
        "{sent:?} {got:?}"
    );

    let client = tcp_of(&mut probes, sender_cgroup.id());
    let server = tcp_of(&mut probes, receiver_cgroup.id());
    eprintln!("sender {client:?}\nreceiver {server:?}");
    assert_eq!(
        (client.connects, client.connect_failures, client.accepts),
        (1, 0, 0)
    );
    assert_eq!(
        (server.connects, server.connect_failures, server.accepts),
        (0, 0, 1)
    );
    assert_eq!((client.open(), server.open()), (0, 0), "both sides closed");
    assert_eq!(probes.map_overflows(), 0);
}

#[test]
fn a_connect_to_a_closed_port_is_one_failed_connect_of_its_container() {
    assert_root();
    let mut probes = load(&[Probe::Tcp]);
    let cgroup = TestCgroup::unified("tcp-refused").unwrap();
    // A port nothing listens on: bound, never listened, then closed.
    let port = {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let client = cgroup
        .spawn_inside(&mut python(&format!(
            "import socket\n\
             try:\n\
             \x20   socket.create_connection(('127.0.0.1', {port}))\n\
             \x20   raise SystemExit(1)\n\
             except ConnectionRefusedError:\n\
             \x20   pass\n"
        )))
        .unwrap();
    assert!(client.wait_with_output().unwrap().status.success());
    let c = tcp_of(&mut probes, cgroup.id());
    eprintln!("cgroup {}: {c:?}", cgroup.id());
    assert_eq!((c.connects, c.connect_failures, c.accepts), (0, 1, 0));
    assert_eq!(c.open(), 0);
}
