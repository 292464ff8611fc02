//! The metric families this source emits: cAdvisor's names and types.

use crate::model::{FamilyMetadata, MetricType};

/// One metric family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: MetricType,
    pub help: &'static str,
}

impl Family {
    /// Whether cAdvisor exposes the family without sample timestamps (spec §3): the spec
    /// gauges, start and creation time, the scrape error and version info, and in kubelet the
    /// `machine_*` families. Every other family carries the time its read started.
    pub fn exposed_without_timestamp(&self) -> bool {
        self.name.starts_with("container_spec_")
            || self.name.starts_with("machine_")
            || matches!(
                self.name,
                "container_start_time_seconds"
                    | "container_creation_time_seconds"
                    | "container_scrape_error"
                    | "cadvisor_version_info"
            )
    }

    /// The family's metadata as a batch carries it.
    pub fn metadata(&self) -> FamilyMetadata {
        let m = FamilyMetadata::new(self.name, self.kind, self.help);
        if self.exposed_without_timestamp() {
            m.without_timestamp()
        } else {
            m
        }
    }
}

macro_rules! families {
    ($($id:ident = $name:literal, $kind:ident, $help:literal;)*) => {
        $(pub static $id: Family = Family { name: $name, kind: MetricType::$kind, help: $help };)*
        /// Every family, for documentation and tests.
        pub static ALL: &[&Family] = &[$(&$id),*];
    };
}

families! {
    // Always emitted.
    LAST_SEEN = "container_last_seen", Gauge, "Last time a container was seen by the exporter";
    HEALTH_STATE = "container_health_state", Gauge, "The result of the container's health check (1 healthy, 0 unhealthy or starting, -1 no health check)";
    START_TIME = "container_start_time_seconds", Gauge, "Start time of the container since unix epoch in seconds.";
    CREATION_TIME = "container_creation_time_seconds", Gauge, "Creation time of the container since unix epoch in seconds.";
    SPEC_CPU_PERIOD = "container_spec_cpu_period", Gauge, "CPU period of the container.";
    SPEC_CPU_QUOTA = "container_spec_cpu_quota", Gauge, "CPU quota of the container.";
    SPEC_CPU_SHARES = "container_spec_cpu_shares", Gauge, "CPU share of the container.";
    SPEC_MEMORY_LIMIT = "container_spec_memory_limit_bytes", Gauge, "Memory limit for the container.";
    SPEC_MEMORY_RESERVATION = "container_spec_memory_reservation_limit_bytes", Gauge, "Memory reservation limit for the container.";
    SPEC_MEMORY_SWAP_LIMIT = "container_spec_memory_swap_limit_bytes", Gauge, "Memory swap limit for the container.";
    SCRAPE_ERROR = "container_scrape_error", Gauge, "1 if there was an error while getting container metrics, 0 otherwise";
    VERSION_INFO = "cadvisor_version_info", Gauge, "A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.";

    // cpu
    CPU_USER = "container_cpu_user_seconds_total", Counter, "Cumulative user cpu time consumed in seconds.";
    CPU_SYSTEM = "container_cpu_system_seconds_total", Counter, "Cumulative system cpu time consumed in seconds.";
    CPU_USAGE = "container_cpu_usage_seconds_total", Counter, "Cumulative cpu time consumed in seconds.";
    CFS_PERIODS = "container_cpu_cfs_periods_total", Counter, "Number of elapsed enforcement period intervals.";
    CFS_THROTTLED_PERIODS = "container_cpu_cfs_throttled_periods_total", Counter, "Number of throttled period intervals.";
    CFS_THROTTLED_SECONDS = "container_cpu_cfs_throttled_seconds_total", Counter, "Total time duration the container has been throttled.";
    CFS_BURST_PERIODS = "container_cpu_cfs_burst_periods_total", Counter, "Number of periods when burst occurs.";
    CFS_BURST_SECONDS = "container_cpu_cfs_burst_seconds_total", Counter, "Total time duration the container has been bursted.";

    // cpuLoad (kubelet leaves cAdvisor's load reader off: constant zeros)
    LOAD_AVERAGE = "container_cpu_load_average_10s", Gauge, "Value of container cpu load average over the last 10 seconds.";
    LOAD_D_AVERAGE = "container_cpu_load_d_average_10s", Gauge, "Value of container cpu load.d average over the last 10 seconds.";
    TASKS_STATE = "container_tasks_state", Gauge, "Number of tasks in given state";

    // memory
    MEM_USAGE = "container_memory_usage_bytes", Gauge, "Current memory usage in bytes, including all memory regardless of when it was accessed";
    MEM_MAX_USAGE = "container_memory_max_usage_bytes", Gauge, "Maximum memory usage recorded in bytes";
    MEM_WORKING_SET = "container_memory_working_set_bytes", Gauge, "Current working set in bytes.";
    MEM_CACHE = "container_memory_cache", Gauge, "Number of bytes of page cache memory.";
    MEM_RSS = "container_memory_rss", Gauge, "Size of RSS in bytes.";
    MEM_MAPPED_FILE = "container_memory_mapped_file", Gauge, "Size of memory mapped files in bytes.";
    MEM_SWAP = "container_memory_swap", Gauge, "Container swap usage in bytes.";
    MEM_KERNEL = "container_memory_kernel_usage", Gauge, "Size of kernel memory allocated in bytes.";
    MEM_FAILCNT = "container_memory_failcnt", Counter, "Number of memory usage hits limits";
    MEM_FAILURES = "container_memory_failures_total", Counter, "Cumulative count of memory allocation failures.";
    MEM_ACTIVE_FILE = "container_memory_total_active_file_bytes", Gauge, "Current total active file in bytes.";
    MEM_INACTIVE_FILE = "container_memory_total_inactive_file_bytes", Gauge, "Current total inactive file in bytes.";
    MEM_EVENTS_HIGH = "container_memory_events_high_total", Counter, "Number of times processes of the cgroup were throttled over the memory high boundary.";
    MEM_EVENTS_MAX = "container_memory_events_max_total", Counter, "Number of times the cgroup's memory usage was about to go over the max boundary.";
    MEM_FILE_DIRTY = "container_memory_file_dirty_bytes", Gauge, "Size of file data modified and not yet written back in bytes.";
    MEM_FILE_WRITEBACK = "container_memory_file_writeback_bytes", Gauge, "Size of file data being written back in bytes.";
    MEM_PGSCAN = "container_memory_pgscan_total", Counter, "Number of pages scanned by reclaim.";
    MEM_PGSTEAL = "container_memory_pgsteal_total", Counter, "Number of pages reclaimed.";
    MEM_REFAULT_FILE = "container_memory_workingset_refault_file_total", Counter, "Number of refaults of previously evicted file pages.";
    MEM_REFAULT_ANON = "container_memory_workingset_refault_anon_total", Counter, "Number of refaults of previously evicted anonymous pages.";
    MEM_MIGRATE = "container_memory_migrate", Gauge, "Memory migrate status.";
    MEM_NUMA_PAGES = "container_memory_numa_pages", Gauge, "Number of used pages per NUMA node";

    // hugetlb
    HUGETLB_USAGE = "container_hugetlb_usage_bytes", Gauge, "Current hugepage usage in bytes";
    HUGETLB_MAX_USAGE = "container_hugetlb_max_usage_bytes", Gauge, "Maximum hugepage usage recorded in bytes";
    HUGETLB_FAILCNT = "container_hugetlb_failcnt", Counter, "Number of hugepage usage hits limits";

    // disk (filesystem usage, node root only)
    FS_USAGE = "container_fs_usage_bytes", Gauge, "Number of bytes that are consumed by the container on this filesystem.";
    FS_LIMIT = "container_fs_limit_bytes", Gauge, "Number of bytes that can be consumed by the container on this filesystem.";
    FS_INODES_TOTAL = "container_fs_inodes_total", Gauge, "Number of Inodes";
    FS_INODES_FREE = "container_fs_inodes_free", Gauge, "Number of available Inodes";

    // diskIO
    FS_READS_BYTES = "container_fs_reads_bytes_total", Counter, "Cumulative count of bytes read";
    FS_WRITES_BYTES = "container_fs_writes_bytes_total", Counter, "Cumulative count of bytes written";
    FS_READS = "container_fs_reads_total", Counter, "Cumulative count of reads completed";
    FS_WRITES = "container_fs_writes_total", Counter, "Cumulative count of writes completed";
    FS_SECTOR_READS = "container_fs_sector_reads_total", Counter, "Cumulative count of sector reads completed";
    FS_SECTOR_WRITES = "container_fs_sector_writes_total", Counter, "Cumulative count of sector writes completed";
    FS_READS_MERGED = "container_fs_reads_merged_total", Counter, "Cumulative count of reads merged";
    FS_WRITES_MERGED = "container_fs_writes_merged_total", Counter, "Cumulative count of writes merged";
    FS_READ_SECONDS = "container_fs_read_seconds_total", Counter, "Cumulative count of seconds spent reading";
    FS_WRITE_SECONDS = "container_fs_write_seconds_total", Counter, "Cumulative count of seconds spent writing";
    FS_IO_CURRENT = "container_fs_io_current", Gauge, "Number of I/Os currently in progress";
    FS_IO_TIME = "container_fs_io_time_seconds_total", Counter, "Cumulative count of seconds spent doing I/Os";
    FS_IO_TIME_WEIGHTED = "container_fs_io_time_weighted_seconds_total", Counter, "Cumulative weighted I/O time in seconds";
    FS_IO_COST_USAGE = "container_fs_io_cost_usage_seconds_total", Counter, "Cumulative IOCost usage in seconds";
    FS_IO_COST_WAIT = "container_fs_io_cost_wait_seconds_total", Counter, "Cumulative IOCost wait in seconds";
    FS_IO_COST_INDEBT = "container_fs_io_cost_indebt_seconds_total", Counter, "Cumulative IOCost debt in seconds";
    FS_IO_COST_INDELAY = "container_fs_io_cost_indelay_seconds_total", Counter, "Cumulative IOCost delay in seconds";
    BLKIO_DEVICE_USAGE = "container_blkio_device_usage_total", Counter, "Blkio Device bytes usage";

    // network
    NET_RX_BYTES = "container_network_receive_bytes_total", Counter, "Cumulative count of bytes received";
    NET_RX_PACKETS = "container_network_receive_packets_total", Counter, "Cumulative count of packets received";
    NET_RX_ERRORS = "container_network_receive_errors_total", Counter, "Cumulative count of errors encountered while receiving";
    NET_RX_DROPPED = "container_network_receive_packets_dropped_total", Counter, "Cumulative count of packets dropped while receiving";
    NET_TX_BYTES = "container_network_transmit_bytes_total", Counter, "Cumulative count of bytes transmitted";
    NET_TX_PACKETS = "container_network_transmit_packets_total", Counter, "Cumulative count of packets transmitted";
    NET_TX_ERRORS = "container_network_transmit_errors_total", Counter, "Cumulative count of errors encountered while transmitting";
    NET_TX_DROPPED = "container_network_transmit_packets_dropped_total", Counter, "Cumulative count of packets dropped while transmitting";

    // process
    PROCESSES = "container_processes", Gauge, "Number of processes running inside the container.";
    FILE_DESCRIPTORS = "container_file_descriptors", Gauge, "Number of open file descriptors for the container.";
    SOCKETS = "container_sockets", Gauge, "Number of open sockets for the container.";
    THREADS = "container_threads", Gauge, "Number of threads running inside the container";
    THREADS_MAX = "container_threads_max", Gauge, "Maximum number of threads allowed inside the container, infinity if value is zero";
    ULIMITS_SOFT = "container_ulimits_soft", Gauge, "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice";

    // oom_event
    OOM_EVENTS = "container_oom_events_total", Counter, "Count of out of memory events observed for the container";

    // pressure
    PSI_CPU_WAITING = "container_pressure_cpu_waiting_seconds_total", Counter, "Total time duration tasks in the container have waited due to CPU pressure stalls.";
    PSI_CPU_STALLED = "container_pressure_cpu_stalled_seconds_total", Counter, "Total time duration no tasks in the container could make progress due to CPU congestion.";
    PSI_MEMORY_WAITING = "container_pressure_memory_waiting_seconds_total", Counter, "Total time duration tasks in the container have waited due to memory pressure stalls.";
    PSI_MEMORY_STALLED = "container_pressure_memory_stalled_seconds_total", Counter, "Total time duration no tasks in the container could make progress due to memory congestion.";
    PSI_IO_WAITING = "container_pressure_io_waiting_seconds_total", Counter, "Total time duration tasks in the container have waited due to IO pressure stalls.";
    PSI_IO_STALLED = "container_pressure_io_stalled_seconds_total", Counter, "Total time duration no tasks in the container could make progress due to IO congestion.";

    // machine
    MACHINE_CPU_CORES = "machine_cpu_cores", Gauge, "Number of logical CPU cores.";
    MACHINE_CPU_PHYSICAL_CORES = "machine_cpu_physical_cores", Gauge, "Number of physical CPU cores.";
    MACHINE_CPU_SOCKETS = "machine_cpu_sockets", Gauge, "Number of CPU sockets.";
    MACHINE_CPU_BOOKS = "machine_cpu_books", Gauge, "Number of CPU books.";
    MACHINE_CPU_DRAWERS = "machine_cpu_drawers", Gauge, "Number of CPU drawers.";
    MACHINE_MEMORY = "machine_memory_bytes", Gauge, "Amount of memory installed on the machine.";
    MACHINE_SWAP = "machine_swap_bytes", Gauge, "Amount of swap memory available on the machine.";
    MACHINE_DIMM_COUNT = "machine_dimm_count", Gauge, "Number of RAM DIMM (all types memory modules) value labeled by dimm type.";
    MACHINE_DIMM_CAPACITY = "machine_dimm_capacity_bytes", Gauge, "Total RAM DIMM capacity (all types memory modules) value labeled by dimm type.";
    MACHINE_NVM_CAPACITY = "machine_nvm_capacity", Gauge, "NVM capacity value labeled by NVM mode (memory mode or app direct mode).";
    MACHINE_NVM_POWER_BUDGET = "machine_nvm_avg_power_budget_watts", Gauge, "NVM power budget.";
    MACHINE_NODE_MEMORY = "machine_node_memory_capacity_bytes", Gauge, "Amount of memory assigned to NUMA node.";
    MACHINE_NODE_HUGEPAGES = "machine_node_hugepages_count", Gauge, "Numer of hugepages assigned to NUMA node.";
    MACHINE_NODE_DISTANCE = "machine_node_distance", Gauge, "Distance between NUMA node and target NUMA node.";
    MACHINE_SCRAPE_ERROR = "machine_scrape_error", Gauge, "1 if there was an error while getting machine metrics, 0 otherwise.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_start_time_and_machine_families_are_exposed_without_timestamps() {
        let untimed: Vec<&str> = ALL
            .iter()
            .filter(|f| f.metadata().exposed_without_timestamp)
            .map(|f| f.name)
            .collect();
        for name in [
            "container_spec_cpu_period",
            "container_spec_cpu_quota",
            "container_spec_cpu_shares",
            "container_spec_memory_limit_bytes",
            "container_spec_memory_reservation_limit_bytes",
            "container_spec_memory_swap_limit_bytes",
            "container_start_time_seconds",
            "container_creation_time_seconds",
            "container_scrape_error",
            "cadvisor_version_info",
            "machine_cpu_cores",
            "machine_memory_bytes",
        ] {
            assert!(untimed.contains(&name), "{name} carries no timestamp");
        }
        for name in [
            "container_last_seen",
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
        ] {
            assert!(!untimed.contains(&name), "{name} carries its read time");
        }
    }
}
