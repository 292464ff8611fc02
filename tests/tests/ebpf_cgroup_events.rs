//! Cgroup creation and removal reach the inventory's channel: creating and removing a real
//! cgroup v2 directory yields one `Created` and one `Removed` event with its id and path.
//!
//! Needs root (loads eBPF, creates cgroups under the cgroup2 mount).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use nodemeter::sources::ebpf::cgroup_events::{CgroupChange, CgroupEvent};
use nodemeter::sources::ebpf::{KernelProbes, Probe, ProbeSelection};
use nodemeter_tests::cgroup::TestCgroup;
use tokio::sync::mpsc::Receiver;

async fn next_for(events: &mut Receiver<CgroupEvent>, path: &str) -> CgroupEvent {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.path == path {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event for {path} within 5 s"))
}

#[tokio::test]
async fn creating_and_removing_a_cgroup_sends_both_events_with_its_id_and_path() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run this test as root");
    let mut probes = KernelProbes::load(&ProbeSelection::all()).unwrap();
    let status = probes
        .statuses()
        .iter()
        .find(|s| s.name == Probe::CgroupEvents.name())
        .unwrap()
        .clone();
    assert!(status.attached, "{:?}", status.reason);
    let mut events = probes.take_cgroup_events(64).unwrap();
    assert!(probes.take_cgroup_events(64).is_none(), "handed out once");

    let cgroup = TestCgroup::unified("events").unwrap();
    let (id, path) = (cgroup.id(), cgroup.path.clone());
    let created = next_for(&mut events, &path).await;
    assert_eq!(
        (created.change, created.id, created.hierarchy),
        (CgroupChange::Created, id, 0)
    );
    drop(cgroup);
    let removed = next_for(&mut events, &path).await;
    assert_eq!((removed.change, removed.id), (CgroupChange::Removed, id));
}
